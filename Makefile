# Two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint typecheck unit bench bench-population clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	mkdir -p var
	CDS_SANDBOX=true CDS_HOST=$(HOST) $(BIN)/uvicorn cds_service.app:create_app --factory --host $(HOST) --port $(PORT) \
		--no-access-log --http cds_service.transport.http_limits:BoundedHttpToolsProtocol

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

# The benchmark suite (a script, not timed tests): writes bench/results.md. Needs wrk (Debian package).
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	PYTHONPATH=. $(BIN)/python -m bench.run $(BENCH_ARGS)

# Population screening benchmark (10 million Observations by default; writes the data under var/ once).
bench-population: $(STAMP)
	PYTHONPATH=. $(BIN)/python -m bench.population $(BENCH_ARGS)
