# Two commands a fresh machine needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,device,onnx,train,quant,profile,speech

.PHONY: setup demo test lint bench clean demo-model

setup: $(VENV)/.installed

# torch is installed first and pinned, so pip takes the CPU build that lies on this machine's disk instead of
# resolving an unpinned torch to a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

demo: setup
	$(VENV)/bin/gazeqwen-edge demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check gazeqwen_edge tests benchmarks
	$(VENV)/bin/ruff format --check gazeqwen_edge tests benchmarks

# the performance suite: every side-by-side figure in one table (benchmarks/suite.py; BENCH_ARGS=--quick for a smoke
# run). The 30-minute soak is not in it: $(PY) benchmarks/soak.py
BENCH_ARGS ?=
bench: setup
	$(PY) benchmarks/suite.py $(BENCH_ARGS)

# The shipped demo model, rebuilt from scratch by our own pipeline (about 75 minutes on one CPU core): the synthetic gaze
# benchmark, the tiny LLM's no-gaze pre-stage, then stage 2 (resampler + LoRA) with gaze; best by validation.
DM := build/demo-model
GE := $(VENV)/bin/gazeqwen-edge
demo-model: setup
	rm -rf $(DM) && mkdir -p $(DM)
	$(GE) dataset synthetic $(DM)/data --videos 120 --seed 0
	$(GE) train --qa $(DM)/data/train.json --out $(DM)/lm --model tiny --stage lm --objective answer \
		--epochs 2 --lr 2e-3 --batch-size 16 --grad-accum 1 --seed 0 --cache-dir $(DM)/cache
	$(GE) train --qa $(DM)/data/train.json --out $(DM)/s2 --model $(DM)/lm/best --stage 2 --objective answer \
		--epochs 2 --lr 2e-3 --batch-size 16 --grad-accum 1 --free-text 0.2 --seed 0 \
		--cache-dir $(DM)/cache
	$(GE) eval --qa $(DM)/data/test.json --model $(DM)/s2/best --out $(DM)/eval-test
	rm -rf gazeqwen_edge/assets/demo_model && cp -r $(DM)/s2/best gazeqwen_edge/assets/demo_model

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
