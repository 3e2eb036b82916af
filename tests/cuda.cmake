# CUDA backend tests (label `cuda`; `make cuda` builds the target
# stableqat_cuda and runs `ctest -L cuda`).
#
#   cuda_host_tests      host compiler; registered whenever the CUDA toolkit is
#                        installed, even with STABLEQAT_CUDA=OFF: the backend's
#                        host/device helpers (16-bit storage conversions, tiling,
#                        launch plan, the per-lane tile work run lane by lane
#                        against exec::seq and the golden vectors (the paper's
#                        baselines DSQ/EWGS/SEQ also against long double), error
#                        messages). Needs no GPU.
#   cuda_frontend_tests  `cuda_tests frontend` (nvcc): exec::cuda's argument
#                        checks (the CPU front-end's messages, before any CUDA
#                        call) and CUDA failures as cuda_error. Needs no GPU.
#   cuda_device_tests    `cuda_tests device` (nvcc): every kernel against
#                        exec::seq and the golden vectors on a GPU. Without a device it lists the cases
#                        it did not run and exits with 77: ctest shows Skipped.
# Building cuda_tests is also the compile check of <stableqat/cuda.cuh> (each
# .cu file includes it first) and of every kernel instantiation the tests use.
# bench/cuda adds bench_cuda to stableqat_cuda when benchmarks are on.
# The portable and asan presets leave cuda_host_tests out (STABLEQAT_CUDA_HOST_TESTS=OFF):
# its host emulation runs in the release build, and `make cuda` builds it too.
if(TARGET CUDA::cudart)
  add_custom_target(stableqat_cuda)
  if(STABLEQAT_CUDA_HOST_TESTS)
    stableqat_add_test(cuda_host_tests
      SOURCES cuda/host_storage_tests.cpp cuda/host_tiling_tests.cpp cuda/host_tile_work_tests.cpp
              cuda/host_golden_tests.cpp cuda/host_export_tests.cpp cuda/host_estimator_tests.cpp
      LABELS cuda host)
    target_link_libraries(cuda_host_tests PRIVATE CUDA::cudart)
    stableqat_use_golden_file(cuda_host_tests)
    add_dependencies(stableqat_cuda cuda_host_tests)
  endif()
endif()
if(NOT STABLEQAT_CUDA)
  return()
endif()

# One executable for both nvcc suites, so each kernel is compiled once; its
# main() (host compiler) picks the suite and reports the skip.
# (stableqat_project_options' flags are for the host compiler only, hence the
# separate object library for main().)
add_library(stableqat_cuda_tests_main OBJECT cuda/cuda_tests_main.cpp)
stableqat_project_options(stableqat_cuda_tests_main)
target_link_libraries(stableqat_cuda_tests_main PRIVATE doctest::doctest CUDA::cudart)
add_executable(cuda_tests cuda/float_tests.cu cuda/storage_tests.cu cuda/export_tests.cu cuda/estimator_tests.cu
                          $<TARGET_OBJECTS:stableqat_cuda_tests_main>)
stableqat_cuda_options(cuda_tests)
target_link_libraries(cuda_tests PRIVATE doctest::doctest)
stableqat_use_golden_file(cuda_tests)
add_dependencies(stableqat_cuda cuda_tests)
add_test(NAME cuda_frontend_tests COMMAND cuda_tests frontend)
add_test(NAME cuda_device_tests COMMAND cuda_tests device)
set_tests_properties(cuda_frontend_tests PROPERTIES LABELS cuda)
set_tests_properties(cuda_device_tests PROPERTIES LABELS "cuda;gpu" SKIP_RETURN_CODE 77)
