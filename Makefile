# scd-monitor: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CATALOG ?= config/catalog.example.yaml

.PHONY: help run test lint imports typecheck unit fmt demo bench clean

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

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

## test: create .venv with dev extras, lint, check the layering, type-check, run the whole suite
test: lint imports typecheck unit

## lint: ruff check and ruff format --check
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

## imports: the layering contracts (pyproject [tool.importlinter])
imports: $(VENV)/.installed-dev
	$(BIN)/lint-imports

## typecheck: mypy --strict
typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

## unit: pytest, the whole suite
unit: $(VENV)/.installed-dev
	$(BIN)/pytest -q -p no:cacheprovider -n 2

## demo: the simulator and a daemon probing it (Ctrl-C stops both)
demo: $(VENV)/.installed
	bash scripts/demo.sh

## bench: the scheduling benchmark (see bench/README.md)
bench: $(VENV)/.installed-dev
	$(BIN)/python bench/bench_scheduler.py

## fmt: format and fix what ruff can
fmt: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

## clean: remove the venv, local data and caches
clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
