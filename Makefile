# One command sets up a machine that has never seen the project: `make setup`.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch 2.14.1 + torchvision 0.29.1: the pair that imports together (see README "Why this torch").
TORCH := torch==2.14.1 torchvision==0.29.1
FAISS ?= cpu

.PHONY: setup test lint bench clean demo toy-regress toy-baseline

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q $(TORCH) -e '.[$(FAISS),dev]'
	touch $@

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The main command: of-toy on generated toy data (all seven tasks, 0/4 shots, random and RICES) + leaderboard.
demo: setup
	$(VENV)/bin/flamingo-eval demo

# CI: a reduced demo compared with the committed baseline; fails when masking, prompts, decoding or metrics
# change the toy scores. After retraining of-toy on purpose: make toy-baseline and commit results/baselines/of-toy.
TOY_CI := --num-samples 12 --quiet
TOY_TOLERANCE ?= 1.0
toy-regress: setup
	rm -rf results/runs/toy-ci
	$(VENV)/bin/flamingo-eval demo $(TOY_CI) --output-dir results/runs/toy-ci
	$(VENV)/bin/flamingo-eval regress --baseline results/baselines/of-toy --current results/runs/toy-ci/of-toy \
		--tolerance $(TOY_TOLERANCE)

toy-baseline: setup
	rm -rf results/runs/toy-ci results/baselines/of-toy
	$(VENV)/bin/flamingo-eval demo $(TOY_CI) --output-dir results/runs/toy-ci
	mkdir -p results/baselines/of-toy
	cp results/runs/toy-ci/of-toy/*.json results/baselines/of-toy/
