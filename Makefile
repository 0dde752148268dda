# fireline: `make run` starts the embedded stack, `make test` runs every test.
# Both create the virtualenv when it is missing and (re)install when pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export FIRELINE_CONFIG ?= fireline.example.yaml

.PHONY: run test lint typecheck system-packages histories bench chaos clean help

help:
	@echo "make run        start Temporal dev server + worker + API (Ctrl-C stops all)"
	@echo "make test       lint, type-check and run every test"
	@echo "make histories  re-record tests/histories/ from the workflow scenarios"
	@echo "make bench      run the benchmarks in bench/ (figures beside baselines; ~50 min)"
	@echo "make chaos      fault injection: worker SIGKILLs, a Temporal restart, flaky vendors (SEED=n)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

# `make run ARGS=--demo` passes flags through to `fireline up`.
run: $(STAMP)
	$(BIN)/fireline up $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Prometheus and Alertmanager (Debian packages) run for real in the end-to-end tests.
system-packages:
	./.ci/install-system-packages

test: lint typecheck system-packages
	$(BIN)/pytest

histories: $(STAMP)
	$(BIN)/python -m tests.record_histories

# Seeded and reproducible: SEED=7 make chaos replays run 7's draws.
chaos: $(STAMP) system-packages
	$(BIN)/python -m chaos --seed $(or $(SEED),1) --kills 20

bench: $(STAMP) system-packages
	$(BIN)/python -m bench.alert_storm
	$(BIN)/python -m bench.page_latency
	$(BIN)/python -m bench.incident_load --incidents 5000 --spread 300
	$(BIN)/python -m bench.sandbox_cost --count 20 --rounds 5 --keep 40
	$(BIN)/python -m bench.replay
	$(BIN)/python -m bench.devserver_rtt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
