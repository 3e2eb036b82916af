# CPU benchmarks (issue 3): exec::seq / simd / par against memcpy and a
# streaming copy of the same bytes. Results: build/release/bench/results.json;
# the summary table goes to stdout (docs/benchmarks.md records one).
# Two builds of the same benchmark: the native one (-march=native, AVX-512 on
# the reference machine) and bench_fake_quantize_avx2 (-mavx2 -mfma
# -mno-avx512f, issue 15), each followed by its summary table; between them
# bench_estimators (issue 12): forward + backward of every estimator (STE,
# StableQAT K=1/K=3, DSQ, ParetoQ's SEQ + STE, EWGS) relative to the STE.
#   make bench                                  # full native suite, estimators, AVX2 simd/par per_tensor, 9 interleaved repetitions (~7 min)
#   make bench-estimators                       # only the estimator table (~2 min)
#   make bench BENCH_FILTER='bwd/.*/16777216'    # a subset (Google Benchmark regex), both builds
#   make bench BENCH_AVX2_FILTER=.               # the whole suite on the AVX2 build too

BENCH_BUILD := build/release
BENCH_OUT ?= $(BENCH_BUILD)/bench/results.json
BENCH_FILTER ?= .
BENCH_REPETITIONS ?= 9
BENCH_MIN_TIME ?= 0.1
BENCH_OUT_AVX2 ?= $(BENCH_BUILD)/bench/results_avx2.json
BENCH_OUT_ESTIMATORS ?= $(BENCH_BUILD)/bench/results_estimators.json
BENCH_ESTIMATORS_FILTER ?= $(BENCH_FILTER)
# The AVX2 run defaults to per_tensor simd/par and the baselines (layout "-"):
# seq is scalar code either way and per_channel adds little; BENCH_FILTER, when
# given, applies to both runs.
ifeq ($(origin BENCH_FILTER),command line)
BENCH_AVX2_FILTER ?= $(BENCH_FILTER)
else
BENCH_AVX2_FILTER ?= ^(fwd|bwd)/[a-z0-9_]+/(per_tensor|-)/(simd|par|1t)/
endif

.PHONY: bench bench-build bench-estimators

# $(call run_benchmark,binary,filter,json): medians of interleaved repetitions, aggregates only.
define run_benchmark
	$(BENCH_BUILD)/bench/$(1) --benchmark_filter='$(2)' \
	  --benchmark_repetitions=$(BENCH_REPETITIONS) --benchmark_min_time=$(BENCH_MIN_TIME) \
	  --benchmark_enable_random_interleaving=true \
	  --benchmark_report_aggregates_only=true --benchmark_out=$(3) --benchmark_out_format=json
endef

bench-build: deps
	cmake --preset release -Wno-dev >/dev/null
	cmake --build --preset release -j $(JOBS) --target bench_fake_quantize bench_fake_quantize_avx2 bench_estimators bench_export

bench: bench-build ## build (release: -march=native and AVX2) and run the CPU benchmarks, then print both summary tables
	$(call run_benchmark,bench_fake_quantize,$(BENCH_FILTER),$(BENCH_OUT))
	@echo
	@bench/summarize.sh $(BENCH_OUT)
	@echo
	$(call run_benchmark,bench_estimators,$(BENCH_ESTIMATORS_FILTER),$(BENCH_OUT_ESTIMATORS))
	@echo
	@bench/summarize.sh $(BENCH_OUT_ESTIMATORS)
	@echo
	$(call run_benchmark,bench_fake_quantize_avx2,$(BENCH_AVX2_FILTER),$(BENCH_OUT_AVX2))
	@echo
	@echo "AVX2 build (-mavx2 -mfma -mno-avx512f):"
	@bench/summarize.sh $(BENCH_OUT_AVX2)
	$(call run_benchmark,bench_export,$(BENCH_FILTER),$(BENCH_BUILD)/bench/export_results.json)

bench-estimators: deps ## build and run only bench_estimators (issue 12's efficiency table), then print its table
	cmake --preset release -Wno-dev >/dev/null
	cmake --build --preset release -j $(JOBS) --target bench_estimators
	$(call run_benchmark,bench_estimators,$(BENCH_ESTIMATORS_FILTER),$(BENCH_OUT_ESTIMATORS))
	@echo
	@bench/summarize.sh $(BENCH_OUT_ESTIMATORS)

# Instruction-level model of the backward hot loops (issues 12 and 15): llvm-mca
# on exec::simd's per-row backward loop of every estimator, native and AVX2
# builds, for the Zen 4 / Zen 3 / Intel models; no benchmark runs, seconds.
# Needs Debian's llvm-19 (its llvm-mca knows znver4): make deps-model.
MODEL_CPUS_NATIVE ?= znver4 skylake-avx512
MODEL_CPUS_AVX2 ?= znver3 znver4 haswell
.PHONY: deps-model bench-model
deps-model: deps
	$(call install_missing,llvm-19)

bench-model: deps-model ## llvm-mca model of each estimator's backward pair loop (native and AVX2 builds)
	cmake --preset release -Wno-dev >/dev/null
	cmake --build --preset release -j $(JOBS) --target bench_hot_loops bench_hot_loops_avx2
	@/usr/bin/env python3 bench/hot_loop_model.py $(BENCH_BUILD)/bench/CMakeFiles/bench_hot_loops.dir/hot_loops.cpp.o $(MODEL_CPUS_NATIVE)
	@echo
	@/usr/bin/env python3 bench/hot_loop_model.py $(BENCH_BUILD)/bench/CMakeFiles/bench_hot_loops_avx2.dir/hot_loops.cpp.o $(MODEL_CPUS_AVX2)
