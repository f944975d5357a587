# mask_cls: `make demo` runs the main job on synthetic data, `make test` runs the tests.
# Both install everything first (a .venv next to this file) when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR := outputs/demo/$(shell date +%Y-%m-%d_%H-%M-%S)

.PHONY: install demo test test-fast lint clean gpu-check

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile -e '.[dev,sweep,cluster,pretrained,export,mlflow]'
	$(PY) -m compileall -qq -j 0 $(VENV)/lib || true  # pip compiles on one core; both take half the time (a file for a newer Python is left, as pip leaves it)
	touch $(STAMP)

demo: install
	$(PY) run.py experiment=demo hydra.run.dir=$(DEMO_DIR)/train
	$(PY) run.py task=evaluate submission=$(DEMO_DIR)/train/submission.csv \
		answers=data/demo/eval_answers.csv hydra.run.dir=$(DEMO_DIR)/evaluate
	@echo "demo data:        data/demo (answer key: data/demo/eval_answers.csv)"
	@echo "training run:     $(DEMO_DIR)/train (metrics.json, checkpoints/, report/, submission.csv, csv/metrics.csv)"
	@echo "leaderboard score: $(DEMO_DIR)/evaluate/scores.json"

test: install
	$(VENV)/bin/ruff check mask_cls tests bench run.py  # lint and types first: seconds, and CI runs this target
	$(VENV)/bin/mypy  # mask_cls/, as [tool.mypy] in pyproject.toml says
	WANDB_MODE=disabled $(PY) -m pytest -n 2 --dist worksteal --durations=15  # two processes (2 cores); an idle one takes queued tests from the other; the 15 slowest listed

test-fast: install  # development: the tests that start no command (-m "not slow"), under 2 minutes
	WANDB_MODE=disabled $(PY) -m pytest -n 2 --dist worksteal -m "not slow"

gpu-check: install  # the CUDA path end to end (demo bf16 + compile, 16-mixed, predict, syncs, bench/gpu.py)
	$(PY) bench/gpu_check.py

lint: install
	$(VENV)/bin/ruff check mask_cls tests bench run.py
	$(VENV)/bin/mypy

clean:  # caches only: outputs/ (your runs) and data/ stay
	rm -rf .pytest_cache .ruff_cache data/cache
	find . -path './$(VENV)' -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
