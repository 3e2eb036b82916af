# Sanitizers and fuzzing (issue: reliability).

SECONDS ?= 60
FUZZ_BUILD := build/fuzz
FUZZ_FLAGS := -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iinclude

.PHONY: asan fuzz fuzz-build

asan: deps ## build and run the whole test suite under AddressSanitizer + UBSan
	cmake --preset asan -Wno-dev >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS) $(CTEST_ARGS)

fuzz-build: deps-fuzz
	@mkdir -p $(FUZZ_BUILD)
	clang++ $(FUZZ_FLAGS) -march=native fuzz/fuzz_fake_quantize.cpp -o $(FUZZ_BUILD)/fuzz_fake_quantize

fuzz: fuzz-build ## run the libFuzzer target for SECONDS (default 60) on a copy of the committed corpus
	@rm -rf $(FUZZ_BUILD)/corpus && cp -r fuzz/corpus $(FUZZ_BUILD)/corpus
	cd $(FUZZ_BUILD) && ./fuzz_fake_quantize -max_total_time=$(SECONDS) -print_final_stats=1 corpus ../../fuzz/corpus 2>&1 \
	  | grep -E "^(#[0-9]+.*DONE|Done|stat::number_of_executed_units|invariant|==[0-9]+==|SUMMARY)" ; \
	  status=$${PIPESTATUS[0]}; exit $$status
