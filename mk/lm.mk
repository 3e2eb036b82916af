# QAT of a small transformer LM on the King James Bible (issue 16, examples/lm/, docs/lm.md).
#   make lm-demo          default sweep (5 methods x 2/3/4 bits x 4 learning rates x 2 seeds) into build/lm
#   make lm-demo-quick    tiny model, few steps, one method per family, with its checks (build/lm-quick)
# LM_IMPL=library (default: the stableqat PyTorch adapter, built here) | reference (the eager
# transcription of DESIGN.md §1, for checks only) | auto. LM_ARGS passes more options
# (`/usr/bin/python3 examples/lm/lm_demo.py --help`). A killed sweep continues where it stopped
# (--resume: finished runs are reused, the others continue from their checkpoints).

LM_PYTHON ?= /usr/bin/python3
LM_IMPL ?= library
LM_ARGS ?=
LM_OUT ?= build/lm
LM_TORCH_TARGET ?= stableqat_torch
# Debian's torch needs OpenBLAS (else the reference BLAS, ~20x slower matmuls); `bible` is the corpus.
LM_DEB_PACKAGES := python3-torch libopenblas0-pthread bible-kjv bible-kjv-text gnuplot-nox

.PHONY: lm-deps lm-lib lm-demo lm-demo-quick

lm-deps: deps
	$(call install_missing,$(LM_DEB_PACKAGES))

# The PyTorch adapter's op library, when this checkout has it (LM_IMPL=reference needs nothing).
lm-lib: lm-deps
	@if [ "$(LM_IMPL)" != reference ]; then \
	  cmake --preset release -Wno-dev >/dev/null && \
	  if cmake --build --preset release --target help 2>/dev/null | grep -qw "$(LM_TORCH_TARGET)"; then \
	    cmake --build --preset release -j $(JOBS) --target $(LM_TORCH_TARGET); \
	  else \
	    echo "lm: no CMake target $(LM_TORCH_TARGET) in this checkout (PyTorch adapter, issue 14)"; \
	  fi; \
	fi

lm-demo: lm-lib ## QAT of a ~1M-parameter transformer LM: STE/LSQ, ParetoQ, DSQ, StableQAT, STE x 0.30 at 2/3/4 bits over 4 learning rates (<= 20 min on 2 cores)
	PYTHONPATH=$(CURDIR)/python$${PYTHONPATH:+:$$PYTHONPATH} $(LM_PYTHON) examples/lm/lm_demo.py \
	  --impl $(LM_IMPL) --out $(LM_OUT) --resume $(LM_ARGS)

lm-demo-quick: lm-lib ## the LM demo's --quick mode with its checks (tiny model; under a minute)
	PYTHONPATH=$(CURDIR)/python$${PYTHONPATH:+:$$PYTHONPATH} $(LM_PYTHON) examples/lm/lm_demo.py \
	  --quick --impl $(LM_IMPL) --out $(LM_OUT)-quick $(LM_ARGS)
