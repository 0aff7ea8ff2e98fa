# Two commands a fresh machine needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,device,onnx,train

.PHONY: setup demo test lint bench clean

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

# every benchmark but the 30-minute soak (run it on its own: $(PY) benchmarks/soak.py)
bench: setup
	for b in benchmarks/*.py; do case $$b in *soak.py) continue;; esac; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
