# scd-monitor: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CATALOG ?= config/catalog.example.yaml

.PHONY: run test lint typecheck unit demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

## run: create .venv, install, run the daemon on the example catalog (SQLite under ./data/)
run: $(VENV)/.installed
	mkdir -p data
	$(BIN)/scd-monitor run --catalog $(CATALOG)

## test: create .venv with dev extras, lint, type-check and run the whole suite
test: lint typecheck unit

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

unit: $(VENV)/.installed-dev
	$(BIN)/pytest -q -p no:cacheprovider

## demo: the simulator and a daemon probing it (Ctrl-C stops both)
demo: $(VENV)/.installed
	bash scripts/demo.sh

## bench: the scheduling benchmark (see bench/README.md)
bench: $(VENV)/.installed-dev
	$(BIN)/python bench/bench_scheduler.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
