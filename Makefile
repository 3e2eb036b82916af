# stableqat: the two commands of the README are `make demo` and `make test`.
# Both install missing Debian packages first (apt-get; root or sudo).

SHELL := /bin/bash
JOBS ?= 2
CTEST_ARGS ?=

# Debian packages the build, tests, benchmarks, demo and docs need.
DEB_PACKAGES := make cmake g++ pkg-config libeigen3-dev libxsimd-dev xtl-dev doctest-dev libbenchmark-dev \
                zlib1g-dev dataset-fashion-mnist gnuplot-nox python3-torch libtorch-dev python3-pytest libopenblas0-pthread
# Extra packages for sanitizers and fuzzing (clang's libFuzzer runtime).
DEB_PACKAGES_FUZZ := clang libclang-rt-14-dev

.PHONY: help deps deps-fuzz test test-release test-portable test-avx2 demo build-release bench docs clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "Missing Debian packages:$$missing"; \
	    echo "Run: sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	  echo "Installing:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps: ## install missing Debian packages (apt-get update once, then install)
	$(call install_missing,$(DEB_PACKAGES))

deps-fuzz: deps
	$(call install_missing,$(DEB_PACKAGES_FUZZ))

test: deps test-release test-portable test-avx2 ## build and run every test (-march=native), then the library's tests with no arch flags and with AVX2
	@echo "make test: all test builds passed"

test-release:
	cmake --preset release -Wno-dev >/dev/null
	cmake --build --preset release -j $(JOBS)
	ctest --preset release -j $(JOBS) $(CTEST_ARGS)

test-portable:
	cmake --preset portable -Wno-dev >/dev/null
	cmake --build --preset portable -j $(JOBS)
	ctest --preset portable -j $(JOBS) $(CTEST_ARGS)

# The AVX2 code path (8 float lanes, no mask registers) on a machine of any
# x86 level that has AVX2 + FMA: on an AVX-512 machine the native build never runs it.
test-avx2: deps ## the library's tests built with -mavx2 -mfma -mno-avx512f (skipped on a CPU without AVX2/FMA)
	@if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then \
	  cmake --preset avx2 -Wno-dev >/dev/null && \
	  cmake --build --preset avx2 -j $(JOBS) && \
	  ctest --preset avx2 -j $(JOBS) $(CTEST_ARGS); \
	else echo "test-avx2: skipped: this CPU has no AVX2 + FMA"; fi

build-release: deps
	cmake --preset release -Wno-dev >/dev/null
	cmake --build --preset release -j $(JOBS)

demo: deps ## 2-bit QAT on Fashion-MNIST: STE vs StableQAT across learning rates (a few minutes; DEMO_ARGS=--quick)
	cmake --preset release -Wno-dev >/dev/null
	cmake --build --preset release -j $(JOBS) --target qat_fashion_mnist
	./build/release/examples/qat_fashion_mnist --out $(DEMO_OUT) $(DEMO_ARGS)

clean: ## remove build trees
	rm -rf build

# Targets of each area (bench, cuda, docs, asan, fuzz) live in mk/*.mk.
-include mk/*.mk
