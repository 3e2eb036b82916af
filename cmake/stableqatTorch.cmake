# PyTorch adapter (issue 14): the op library libstableqat_torch.so that registers
# TORCH_LIBRARY(stableqat, ...) operators with CPU and Autograd kernels, for
# libtorch (C++), Python (torch.ops.load_library) and TorchScript.
#
# Needs Debian's libtorch-dev (find_package(Torch), CPU build 1.13). The
# header-only core never includes torch: only the sources in torch/ do.
# Python finds the library in build/<preset>/torch/ (python/stableqat/_library.py)
# or at $STABLEQAT_TORCH_LIBRARY.

set(_stableqat_torch_default OFF)
if(PROJECT_IS_TOP_LEVEL)
  # Quietly probe: a machine without libtorch-dev builds everything else.
  find_package(Torch QUIET)
  if(Torch_FOUND)
    set(_stableqat_torch_default ON)
  endif()
endif()
option(STABLEQAT_TORCH "Build the PyTorch op library (torch/) and its tests" ${_stableqat_torch_default})

if(STABLEQAT_TORCH)
  find_package(Torch REQUIRED)
  if(NOT STABLEQAT_WITH_XSIMD)
    message(FATAL_ERROR "STABLEQAT_TORCH needs xsimd (exec::par runs the op kernels)")
  endif()
  # Runtime SIMD dispatch: the element loops (torch-free sources) are built once
  # per instruction set into their own module, libstableqat_torch_kernels_<arch>.so,
  # exporting only the kernel table (version script); libstableqat_torch.so, the
  # torch glue built for the baseline, dlopen()s the best one at first use
  # (torch/dispatch.cpp, $STABLEQAT_TORCH_ARCH forces one). Neither gets the
  # preset's -march=native: a binary built once runs on any x86-64 CPU.
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
    set(_stableqat_torch_arches sse2 avx2 avx512)
  else()
    set(_stableqat_torch_arches generic)
  endif()
  set(_stableqat_torch_flags_sse2 -march=x86-64 -mtune=generic)
  # -mf16c: float16 tensors convert in registers (every AVX2 + FMA CPU has F16C;
  # dispatch.cpp checks it too). The avx512 module converts with AVX-512F itself.
  set(_stableqat_torch_flags_avx2 -march=x86-64 -mtune=generic -mavx2 -mfma -mf16c)
  set(_stableqat_torch_flags_avx512 -march=x86-64 -mtune=generic -mavx2 -mfma -mavx512f -mavx512cd -mavx512dq
                                    -mavx512bw -mavx512vl)
  set(_stableqat_torch_flags_generic "")
  set(_stableqat_torch_version_script "${PROJECT_BINARY_DIR}/torch/kernel_module.map")
  file(WRITE "${_stableqat_torch_version_script}"
       "{ global: stableqat_torch_kernel_table; local: *; };\n")

  # Warnings and the core headers as for every project target, without -march=native.
  function(_stableqat_torch_target_options target)
    set(STABLEQAT_NATIVE OFF)
    stableqat_project_options(${target})
    target_include_directories(${target} PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}/torch")
    set_target_properties(${target} PROPERTIES
                          LIBRARY_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/torch"
                          CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  endfunction()

  add_library(stableqat_torch SHARED
              "${CMAKE_CURRENT_SOURCE_DIR}/torch/options.cpp"
              "${CMAKE_CURRENT_SOURCE_DIR}/torch/dispatch.cpp"
              "${CMAKE_CURRENT_SOURCE_DIR}/torch/register.cpp")
  _stableqat_torch_target_options(stableqat_torch)
  # libtorch's own headers are not -Wconversion clean: include them as system headers.
  target_include_directories(stableqat_torch SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})
  target_link_libraries(stableqat_torch PRIVATE ${TORCH_LIBRARIES} ${CMAKE_DL_LIBS})
  target_link_options(stableqat_torch PRIVATE "LINKER:--no-undefined")

  foreach(arch IN LISTS _stableqat_torch_arches)
    set(_target stableqat_torch_kernels_${arch})
    add_library(${_target} MODULE
                "${CMAKE_CURRENT_SOURCE_DIR}/torch/options.cpp"
                "${CMAKE_CURRENT_SOURCE_DIR}/torch/kernels.cpp"
                "${CMAKE_CURRENT_SOURCE_DIR}/torch/export_kernels.cpp"
                "${CMAKE_CURRENT_SOURCE_DIR}/torch/kernel_module.cpp")
    _stableqat_torch_target_options(${_target})
    target_compile_options(${_target} PRIVATE ${_stableqat_torch_flags_${arch}})
    target_compile_definitions(${_target} PRIVATE "STABLEQAT_TORCH_KERNEL_ARCH=\"${arch}\"")
    # stableqat::parallel: exec::par (and the ATen-band fix-up) on torch.get_num_threads() threads.
    target_link_libraries(${_target} PRIVATE stableqat::parallel)
    target_link_options(${_target} PRIVATE "LINKER:--version-script=${_stableqat_torch_version_script}"
                        "LINKER:--no-undefined")
    add_dependencies(stableqat_torch ${_target})
  endforeach()
  # The Python package looks for the op library here.
  set(STABLEQAT_TORCH_LIBRARY_FILE "$<TARGET_FILE:stableqat_torch>")
endif()
