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
  add_library(stableqat_torch SHARED
              "${CMAKE_CURRENT_SOURCE_DIR}/torch/options.cpp"
              "${CMAKE_CURRENT_SOURCE_DIR}/torch/kernels.cpp"
              "${CMAKE_CURRENT_SOURCE_DIR}/torch/export_kernels.cpp"
              "${CMAKE_CURRENT_SOURCE_DIR}/torch/register.cpp")
  target_include_directories(stableqat_torch PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}/torch")
  # libtorch's own headers are not -Wconversion clean: include them as system headers.
  target_include_directories(stableqat_torch SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})
  # stableqat::parallel: exec::par (and the ATen-band fix-up) on torch.get_num_threads() threads.
  target_link_libraries(stableqat_torch PRIVATE stableqat::parallel ${TORCH_LIBRARIES})
  stableqat_project_options(stableqat_torch)
  # Only the registrations are the library's interface (loaded with dlopen).
  set_target_properties(stableqat_torch PROPERTIES
                        LIBRARY_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/torch"
                        CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  # The Python package looks for the op library here.
  set(STABLEQAT_TORCH_LIBRARY_FILE "$<TARGET_FILE:stableqat_torch>")
endif()
