# Two commands a fresh machine needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,device,onnx,train,quant,profile,speech

.PHONY: setup demo test lint bench clean demo-model demo-variants

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
	$(PY) -m pytest -q --durations=25

lint: setup
	$(VENV)/bin/ruff check gazeqwen_edge tests benchmarks
	$(VENV)/bin/ruff format --check gazeqwen_edge tests benchmarks

# the performance suite: every side-by-side figure in one table (benchmarks/suite.py; BENCH_ARGS=--quick for a smoke
# run). The 30-minute soak is not in it: $(PY) benchmarks/soak.py
BENCH_ARGS ?=
bench: setup
	$(PY) benchmarks/suite.py $(BENCH_ARGS)

DM := build/demo-model
GE := $(VENV)/bin/gazeqwen-edge
# The shipped demo model (gazeqwen_edge/assets/demo_model): a tiny GazeQwen trained from random weights on the
# synthetic benchmark's present-gaze, gaze-triggered-alert and control questions, in the runtime's regime (2 s
# clips at 2 fps, the clip's V-JEPA windows, the scanpath as the live session builds it), then 2 more epochs with
# balanced alert pairs (--alert-pairs) and the background-gaze control (CTL-G: "nothing" while the wearer looks at no
# object; README "Alerts"). About an hour on 2 CPU cores; the shipped run's figures: README "Training and
# evaluation".
DM_TASKS := OI-E,OI-H,OAR,GTA,CTL-O,CTL-A
DM_ALERT_TASKS := $(DM_TASKS),CTL-G
# The recipe, shared with demo-variants so the baselines cannot drift from it: both training stages' common options,
# each stage's own, and the test-split evaluation (add --model and --out).
DM_TRAIN := $(GE) train --qa $(DM)/data/train.json --val $(DM)/data/val_small.json --stage joint --objective answer \
	--clip-seconds 2 --free-text 0.7 --batch-size 16 --grad-accum 1 --cache-dir $(DM)/cache
DM_JOINT := --tasks $(DM_TASKS) --model tiny --step-fixations latest --lr 2e-3 --epochs 3 --seed 0
DM_ALERTS := --tasks $(DM_ALERT_TASKS) --alert-pairs --lr 1e-3 --epochs 2 --seed 1
DM_EVAL := $(GE) eval --qa $(DM)/data/test.json --tasks $(DM_ALERT_TASKS) --cache-dir $(DM)/cache --batch-size 32
demo-model: setup
	rm -rf $(DM) && mkdir -p $(DM)
	$(GE) dataset synthetic $(DM)/data --videos 1500 --duration 8 --objects 4 --per-task 6 --seed 0
	$(PY) -c "import json; d = json.load(open('$(DM)/data/val.json')); v = set(sorted({e['video_path'] for e in d})[:60]); json.dump([e for e in d if e['video_path'] in v], open('$(DM)/data/val_small.json', 'w'))"
	$(DM_TRAIN) $(DM_JOINT) --out $(DM)/joint
	$(DM_TRAIN) $(DM_ALERTS) --model $(DM)/joint/best --out $(DM)/alerts
	$(DM_EVAL) --model $(DM)/alerts/best --out $(DM)/eval-test
	rm -rf gazeqwen_edge/assets/demo_model && cp -r $(DM)/alerts/best gazeqwen_edge/assets/demo_model

# The five-variant table (README "Training and evaluation"): each baseline trained with demo-model's two commands on
# its dataset and encoder cache, only how gaze reaches the model differing (--variant, or the resampler's
# --gaze-encoding), then all scored on the test split beside the demo model's own run ($(DM)/eval-test). Run
# make demo-model first. About 2 h on 2 CPU cores (the visual prompt re-encodes every clip with gaze drawn on it).
DV := build/demo-variants
DV_TRAIN_no_gaze := --variant no_gaze
DV_TRAIN_gaze_text := --variant gaze_text
DV_TRAIN_visual_prompt := --variant visual_prompt
DV_TRAIN_reference := --gaze-encoding reference
DV_EVAL_no_gaze := --variant no_gaze
DV_EVAL_gaze_text := --variant gaze_text
DV_EVAL_visual_prompt := --variant visual_prompt
DV_EVAL_reference :=
DV_NAMES := no_gaze visual_prompt gaze_text reference
demo-variants: $(foreach v,$(DV_NAMES),$(DV)/$(v)/eval-test/results.json)
	$(GE) eval-table $(DM)/eval-test $(foreach v,$(DV_NAMES),$(DV)/$(v)/eval-test) --out $(DV)/table.md

$(DV)/%/eval-test/results.json: | setup
	@test -f $(DM)/eval-test/results.json || { echo "error: $(DM)/eval-test is missing"; \
		echo "  hint: run make demo-model first (its dataset, encoder cache and test run)"; exit 2; }
	$(DM_TRAIN) $(DM_JOINT) --out $(DV)/$*/joint $(DV_TRAIN_$*)
	$(DM_TRAIN) $(DM_ALERTS) --model $(DV)/$*/joint/best --out $(DV)/$*/alerts $(DV_TRAIN_$*)
	$(DM_EVAL) --model $(DV)/$*/alerts/best --out $(DV)/$*/eval-test $(DV_EVAL_$*)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
