# CPU benchmarks (issue 3): exec::seq / simd / par against memcpy and a
# streaming copy of the same bytes. Results: build/release/bench/results.json;
# the summary table goes to stdout (docs/benchmarks.md records one).
#   make bench                                  # full suite, 9 interleaved repetitions (~3 min)
#   make bench BENCH_FILTER='bwd/.*/16777216'    # a subset (Google Benchmark regex)

BENCH_BUILD := build/release
BENCH_OUT ?= $(BENCH_BUILD)/bench/results.json
BENCH_FILTER ?= .
BENCH_REPETITIONS ?= 9
BENCH_MIN_TIME ?= 0.1

.PHONY: bench bench-build

bench-build: deps
	cmake --preset release -Wno-dev >/dev/null
	cmake --build --preset release -j $(JOBS) --target bench_fake_quantize bench_export

bench: bench-build ## build (release, -march=native) and run the CPU benchmarks, then print the summary table
	$(BENCH_BUILD)/bench/bench_fake_quantize --benchmark_filter='$(BENCH_FILTER)' \
	  --benchmark_repetitions=$(BENCH_REPETITIONS) --benchmark_min_time=$(BENCH_MIN_TIME) \
	  --benchmark_enable_random_interleaving=true \
	  --benchmark_report_aggregates_only=true --benchmark_out=$(BENCH_OUT) --benchmark_out_format=json
	@echo
	@bench/summarize.sh $(BENCH_OUT)
	$(BENCH_BUILD)/bench/bench_export --benchmark_filter='$(BENCH_FILTER)' \
	  --benchmark_repetitions=$(BENCH_REPETITIONS) --benchmark_min_time=$(BENCH_MIN_TIME) \
	  --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true \
	  --benchmark_out=$(BENCH_BUILD)/bench/export_results.json --benchmark_out_format=json
