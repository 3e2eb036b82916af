# The Fashion-MNIST demo and the documentation plots (issue 4).
# `make demo` itself is in the main Makefile; it writes its table, CSV curves
# and plot into $(DEMO_OUT).

DEMO_OUT ?= build/demo
DEMO_ARGS ?=
DOCS_DATA := build/release/docs-data

.PHONY: demo-quick demo-adamw docs

demo-quick: deps ## the demo's --quick mode with its pass/fail checks (well under a minute)
	cmake --preset release -Wno-dev >/dev/null
	cmake --build --preset release -j $(JOBS) --target qat_fashion_mnist
	./build/release/examples/qat_fashion_mnist --quick --out $(DEMO_OUT)-quick

demo-adamw: deps ## the demo's sweep with AdamW: lr 1e-4..3e-2, same methods (72 runs, ~6 min on 2 idle cores; DEMO_ARGS="--seeds 1" shortens it)
	cmake --preset release -Wno-dev >/dev/null
	cmake --build --preset release -j $(JOBS) --target qat_fashion_mnist
	./build/release/examples/qat_fashion_mnist --optimizer adamw --out $(DEMO_OUT)-adamw $(DEMO_ARGS)

docs: deps ## render docs/img/ with gnuplot: surrogate curves, and the curves of the last `make demo`
	cmake --preset release -Wno-dev >/dev/null
	cmake --build --preset release -j $(JOBS) --target surrogate_curves
	./build/release/examples/surrogate_curves $(DOCS_DATA) >/dev/null
	@mkdir -p docs/img
	gnuplot -e "datadir='$(DOCS_DATA)'; outdir='docs/img'" examples/gnuplot/surrogates.gp
	@if [ -f $(DEMO_OUT)/plot.gp ]; then \
	  echo "rendering $(DEMO_OUT)/plot.gp into docs/img/demo_loss_curves.{svg,png}"; \
	  cd $(DEMO_OUT) && gnuplot -e "outdir='$(CURDIR)/docs/img'; outname='demo_loss_curves'" plot.gp; \
	else \
	  echo "no $(DEMO_OUT)/plot.gp: run 'make demo' first to render docs/img/demo_loss_curves.{svg,png}"; \
	fi
	@ls docs/img
