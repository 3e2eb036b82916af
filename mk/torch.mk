# PyTorch adapter (issue 14): the op library and its timing against ATen.
#   make bench-torch                       # 16M float32 weight and a 4K one, 1 thread and all threads
#   make bench-torch TORCH_BENCH_ARGS='--reps 9'
TORCH_BENCH_ARGS ?=

.PHONY: bench-torch torch-build

torch-build: deps
	cmake --preset release -Wno-dev >/dev/null
	cmake --build --preset release -j $(JOBS) --target stableqat_torch

bench-torch: torch-build ## time one fwd+bwd call of the torch op vs ATen's learnable fake quant and the eager paper formula
	PYTHONPATH=python STABLEQAT_TORCH_LIBRARY=build/release/torch/libstableqat_torch.so \
	  /usr/bin/python3 bench/torch_bench.py $(TORCH_BENCH_ARGS)
