// main() of cuda_tests (compiled by the host compiler).
//
//   cuda_tests frontend [doctest options]  the "frontend" suite: needs no GPU
//   cuda_tests device   [doctest options]  the "device" suite; without a CUDA
//                                          device it lists the cases it did not
//                                          run and exits with 77, which ctest
//                                          reports as Skipped, never as passed
//   cuda_tests [doctest options]           both suites, "device" only with a GPU
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  const char* suite = argc > 1 && argv[1][0] != '-' ? argv[1] : nullptr;
  if (suite != nullptr) {
    --argc;
    ++argv;
  }
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  const bool have_device = status == cudaSuccess && devices > 0;
  doctest::Context context(argc, argv);
  if (suite != nullptr) {
    context.setOption("test-suite", suite);
  }
  if (!have_device) {
    const char* reason = status == cudaSuccess ? "0 devices" : cudaGetErrorString(status);
    if (suite != nullptr && std::strcmp(suite, "device") == 0) {
      std::printf("SKIPPED: no CUDA device (cudaGetDeviceCount: %s). These GPU test cases did not run:\n", reason);
      const char* list_argv[] = {argv[0], "--list-test-cases", "--test-suite=device", "--no-version"};
      doctest::Context listing(4, list_argv);
      listing.run();
      return 77;
    }
    std::printf("No CUDA device (cudaGetDeviceCount: %s): running the \"frontend\" suite only.\n", reason);
    context.setOption("test-suite-exclude", "device");
  } else {
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, 0) == cudaSuccess) {
      std::printf("CUDA device 0: %s (sm_%d%d)\n", properties.name, properties.major, properties.minor);
    }
  }
  return context.run();
}
