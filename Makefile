# One command sets up a machine that has never seen the project: `make setup`. It installs exactly the package
# versions in requirements.lock (the set the tests passed on); `make lock` regenerates it (see README "Dependencies").
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock
FAISS ?= cpu

.PHONY: setup lock test lint bench clean demo toy-regress toy-baseline

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(LOCK) Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c $(LOCK) pip
	$(PY) -m pip install -q -c $(LOCK) -e '.[$(FAISS),dev]'
	$(PY) -m flamingo_eval.stack
	touch $@

# A new lock: pyproject.toml's ranges resolved afresh (the newest releases they admit) in a scratch venv, frozen.
# Then `make clean test` and commit requirements.lock with the tests passing on it.
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV)
	python3 -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install -q -e '.[cpu,dev]'
	{ echo "# make lock: pip freeze of a fresh install of pyproject.toml's ranges; make setup installs exactly this."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable | grep -v '^setuptools==\|^wheel=='; } > $(LOCK)
	rm -rf $(LOCK_VENV)

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The main command: of-toy on generated toy data (all seven tasks, 0/4 shots, random and RICES) + leaderboard,
# then the report (results/runs/demo/report/index.html: the path to open is printed last).
demo: setup
	$(VENV)/bin/flamingo-eval demo

# CI: a reduced demo compared with the committed baseline; fails when masking, prompts, decoding or metrics
# change the toy scores. After retraining of-toy on purpose: make toy-baseline and commit results/baselines/of-toy.
TOY_CI := --num-samples 12 --quiet --no-report
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
