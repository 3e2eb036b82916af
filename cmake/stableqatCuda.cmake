# CUDA backend (exec::cuda): option, language and flags. Included from the
# root CMakeLists.txt after the stableqat target exists and before the project
# targets. Without nvcc everything here is skipped and STABLEQAT_CUDA is OFF.
#
#   STABLEQAT_CUDA            build the CUDA tests and benchmark (default: ON when nvcc is found)
#   CMAKE_CUDA_ARCHITECTURES  default "80;90" (A100, H100); e.g. -DCMAKE_CUDA_ARCHITECTURES=native
#
# CMake 3.25 knows no cuda_std_20, so -std=c++20 is passed explicitly.
include(CheckLanguage)

# nvcc is often installed off PATH: fall back to the toolkit's default location.
if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS "/usr/local/cuda/bin/nvcc")
  find_program(STABLEQAT_NVCC nvcc)
  if(NOT STABLEQAT_NVCC)
    set(CMAKE_CUDA_COMPILER "/usr/local/cuda/bin/nvcc" CACHE FILEPATH "CUDA compiler")
  endif()
endif()
# As a subproject, CUDA stays off unless asked for: probing nvcc costs the
# consumer's configure time and enabling a language is the consumer's choice.
set(stableqat_cuda_default OFF)
if(PROJECT_IS_TOP_LEVEL OR STABLEQAT_CUDA)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER AND PROJECT_IS_TOP_LEVEL)
    set(stableqat_cuda_default ON)
  endif()
endif()
option(STABLEQAT_CUDA "Build the CUDA backend's tests and benchmark with nvcc" ${stableqat_cuda_default})

# Consumers' .cu files need the same two flags; they apply to CUDA sources only.
# --expt-relaxed-constexpr lets device code use the constexpr tables of core/.
target_compile_options(stableqat INTERFACE "$<$<COMPILE_LANGUAGE:CUDA>:-std=c++20;--expt-relaxed-constexpr>")

# The CUDA backend's host-side helpers are tested with the host compiler
# whenever the toolkit's headers and runtime are there, even without STABLEQAT_CUDA.
find_package(CUDAToolkit QUIET)

if(NOT STABLEQAT_CUDA)
  return()
endif()
if(NOT CMAKE_CUDA_COMPILER)
  message(FATAL_ERROR "STABLEQAT_CUDA=ON but no CUDA compiler was found: pass -DCMAKE_CUDA_COMPILER=/path/to/nvcc")
endif()
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "80;90" CACHE STRING "CUDA architectures to compile for")
endif()
enable_language(CUDA)
if(NOT CUDAToolkit_FOUND)
  find_package(CUDAToolkit REQUIRED)
endif()
message(STATUS "stableqat: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")

# stableqat_cuda_options(<target>): stableqat_project_options for targets with
# .cu sources. nvcc's own warnings become errors with STABLEQAT_WERROR; host
# code gets the project's warning flags through -Xcompiler (but -Wpedantic,
# which rejects the GNU line markers in nvcc's generated host code), and
# -march=native with STABLEQAT_NATIVE (so exec::seq, the tests' reference,
# fuses multiply-adds like the GPU).
function(stableqat_cuda_options target)
  set(host_flags -Wall -Wextra -Wconversion)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    list(APPEND host_flags -Wno-maybe-uninitialized)
  endif()
  if(STABLEQAT_WERROR)
    list(APPEND host_flags -Werror)
    target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:SHELL:-Werror all-warnings>")
  endif()
  if(STABLEQAT_NATIVE)
    list(APPEND host_flags -march=native)
  endif()
  list(JOIN host_flags "," host_flags)
  target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${host_flags}>")
  target_link_libraries(${target} PRIVATE stableqat::stableqat CUDA::cudart)
endfunction()
