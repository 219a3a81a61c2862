# The one entry point for people and CI.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test unit integration e2e lint bench bench-scale chaos clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ticketing run

test: $(STAMP) lint
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

# Store sizes of the scale run, a comma list: each is a fresh store, written then measured.
EVENTS ?= 100000,1000000

bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale --events $(EVENTS)

chaos: $(STAMP)
	$(BIN)/python -m tests.chaos --commands 5000 --clients 8

clean:
	rm -rf $(VENV) var
