# CUDA backend: build the nvcc tests and benchmark in build/cuda and run the
# `cuda` tests. Without a GPU the device tests report "Skipped" (exit code 77).
CUDA_BUILD_DIR ?= build/cuda
NVCC ?= $(firstword $(shell command -v nvcc 2>/dev/null) $(wildcard /usr/local/cuda/bin/nvcc))
# Default 80;90 (A100, H100); e.g. `make cuda CUDA_ARCHITECTURES=native` on a GPU machine.
CUDA_ARCHITECTURES ?= 80;90

.PHONY: cuda bench-cuda

# CUDA_HOST_TESTS=OFF leaves out cuda_host_tests (host compiler only), which
# `make test` already builds and runs with the same flags: CI's `make cuda` is
# then the nvcc half alone.
CUDA_HOST_TESTS ?= ON

cuda: deps ## build the CUDA backend tests + benchmark with nvcc and run ctest -L cuda
	@if [ -z "$(NVCC)" ]; then echo "make cuda: nvcc not found (install the CUDA toolkit or pass NVCC=...)"; exit 1; fi
	cmake -S . -B $(CUDA_BUILD_DIR) -Wno-dev -DCMAKE_BUILD_TYPE=Release -DSTABLEQAT_WERROR=ON -DSTABLEQAT_NATIVE=ON \
	  -DSTABLEQAT_CUDA=ON -DSTABLEQAT_TORCH=OFF -DCMAKE_CUDA_COMPILER=$(NVCC) "-DCMAKE_CUDA_ARCHITECTURES=$(CUDA_ARCHITECTURES)" \
	  -DSTABLEQAT_CUDA_HOST_TESTS=$(CUDA_HOST_TESTS) >/dev/null
	cmake --build $(CUDA_BUILD_DIR) -j $(JOBS) --target stableqat_cuda
	ctest --test-dir $(CUDA_BUILD_DIR) -L cuda --output-on-failure $(CTEST_ARGS)

bench-cuda: cuda ## run the CUDA benchmark (needs a GPU; prints the roofline fraction)
	$(CUDA_BUILD_DIR)/bench/cuda/bench_cuda --benchmark_counters_tabular=true
