# Throughline developer commands. Needs only Python 3.11+ and make: the first target run creates
# .tools/ (a pinned uv) and .venv/ (the locked environment). Every target honours THROUGHLINE_HOME.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
THROUGHLINE_HOME ?= $(HOME)/.throughline
export THROUGHLINE_HOME
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
# Bytecode is compiled at install time, so every `throughline` start is fast even where the
# environment says PYTHONDONTWRITEBYTECODE (then Python would recompile every module each run).
export UV_COMPILE_BYTECODE := 1
PROJECT_PACKAGES := cli connectors ingest marts pipelines reference reports sampledata schemas transforms warehouse

TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
DEMO_KEY := $(THROUGHLINE_HOME)/demo-customer-key.secret

.PHONY: help install run demo test test-deps test-long test-fast bench lint format dev clean guarantees

help:
	@echo "make run     set everything up and load the bundled sample feeds (THROUGHLINE_HOME=$(THROUGHLINE_HOME))"
	@echo "make test    run the whole test suite (unit tests, then system tests)"
	@echo "make test-fast  unit tests only (no Dagster run, no demo, no long trials)"
	@echo "make test-long  the long trials: kill -9 at every phase and at 50 random moments"
	@echo "make dev     open the Dagster UI (http://127.0.0.1:3000) with the inbox sensor running"
	@echo "make lint    ruff lint and format check"
	@echo "make bench   ingest benchmark side by side with DuckDB, Polars and pandas (BENCH_LINES=5000000)"
	@echo "make guarantees  run the tests of docs/guarantees.md and refresh its figures (the kill -9 trials too)"

$(UV):
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Throughline needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

# The X12 reader's numba passes compile once here (20-40 s on a fresh clone, then cached beside
# their modules), so no ingest or test waits for the compiler.
install: $(VENV)/.installed
	@$(BIN)/python -m compileall -q $(PROJECT_PACKAGES)
	@$(BIN)/python -c "from transforms.readers.x12_stream import compile_passes; compile_passes()"

run: install
	$(BIN)/throughline demo

demo: run

# System packages the system tests use: OpenSSH's sshd (the SFTP tests run against the server
# distributors actually use), Chromium (the UI's screenshot) and PostgreSQL (the production
# instance's storage; the tests start their own cluster). Installed with apt when missing (as root,
# or through sudo).
test-deps:
	@missing=""; [ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi
	@mkdir -p /run/sshd 2>/dev/null || true

# The system tier runs on two workers (pytest-xdist): its tests wait on processes, servers and disks.
test: install test-deps
	$(BIN)/pytest -q -m "not system"
	$(BIN)/pytest -q -n 2 --dist worksteal -m "system and not long"

# The long trials (kill -9 loops, load): CI runs them after `make test` (.ci/run), on two workers
# (pytest-xdist): each trial is a chain of single-threaded `throughline` processes.
test-long: install test-deps
	$(BIN)/pytest -q -n 2 --dist worksteal -m "long"

# The tests that prove docs/guarantees.md, each recording its figures (trials, faults injected, rows
# checked, rows lost) into docs/guarantees.json; the table is rendered from it even when one fails.
guarantees: install test-deps
	@status=0; rm -f docs/guarantees.json.partial docs/guarantees.json.partial.lock; \
	THROUGHLINE_GUARANTEE_FIGURES=$(CURDIR)/docs/guarantees.json.partial $(BIN)/pytest -q -n 2 --dist worksteal $$($(BIN)/python -m tests.guarantees tests) || status=$$?; \
	rm -f docs/guarantees.json.partial.lock; \
	if [ -f docs/guarantees.json.partial ]; then mv docs/guarantees.json.partial docs/guarantees.json; fi; \
	$(BIN)/python -m tests.guarantees render && echo "docs/guarantees.md refreshed"; exit $$status

bench: install
	$(BIN)/python benchmarks/harness.py --lines $${BENCH_LINES:-5000000} --history-lines $${BENCH_HISTORY_LINES:-0} --write

test-fast: install
	$(BIN)/pytest -q -m "not system"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The Dagster deployment as production runs it: code server, daemon and webserver (pipelines/serve.py),
# with the instance (its dagster.yaml copied from the package when new) in $(THROUGHLINE_HOME)/dagster.
dev: install
	@if [ -z "$$THROUGHLINE_CUSTOMER_KEY_SECRET" ] && [ ! -f "$(DEMO_KEY)" ]; then \
		echo "note: THROUGHLINE_CUSTOMER_KEY_SECRET is not set and $(THROUGHLINE_HOME) is no demo home: runs will ask for it"; fi
	$(BIN)/python -m pipelines.serve --host 127.0.0.1 --port $${DAGSTER_PORT:-3000}

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache
