# Two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint typecheck unit bench bench-instructions bench-population clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# --ws none: the service has no WebSocket routes, and loading uvicorn's WebSocket support costs start-up time.
run: $(STAMP)
	mkdir -p var
	CDS_SANDBOX=true CDS_HOST=$(HOST) $(BIN)/uvicorn cds_service.app:create_app --factory --host $(HOST) --port $(PORT) \
		--no-access-log --ws none --http cds_service.transport.http_limits:BoundedHttpToolsProtocol

lint: $(STAMP)
	$(BIN)/ruff check cds_service tests fixtures bench
	$(BIN)/ruff format --check cds_service tests fixtures bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) var/*.sqlite3 .mypy_cache .pytest_cache .ruff_cache

# The benchmark suite (a script, not timed tests): writes bench/results.md and the README's block.
# Needs wrk and valgrind (Debian packages; installed when missing).
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	command -v valgrind >/dev/null || (apt-get update -qq && apt-get install -y -qq valgrind)
	PYTHONPATH=. $(BIN)/python -m bench.run $(BENCH_ARGS)

# Only the deterministic part: instructions per HTTP request under callgrind (~3 min).
bench-instructions: $(STAMP)
	command -v valgrind >/dev/null || (apt-get update -qq && apt-get install -y -qq valgrind)
	PYTHONPATH=. $(BIN)/python -m bench.run --instructions

# Population screening benchmark (10 million Observations by default; writes the data under var/ once).
bench-population: $(STAMP)
	PYTHONPATH=. $(BIN)/python -m bench.population $(BENCH_ARGS)
