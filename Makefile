# Two commands: `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint install clean bench soak abuse

# Serving needs the package alone; the test extras (Playwright, schemathesis, hypothesis, ruff)
# come with the first `make test`.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(TEST_STAMP)

install: $(STAMP)

run: $(STAMP)
	FVAPP_ENV=development $(BIN)/flask --app wsgi db upgrade
	FVAPP_ENV=development $(BIN)/flask --app wsgi seed-demo
	@echo "Serving on http://$(HOST):$(PORT)  (Ctrl-C stops)"
	FVAPP_ENV=development $(BIN)/flask --app wsgi run --host $(HOST) --port $(PORT)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

test: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts

# Every API operation of fvapp against a minimal Flask + psycopg reference of the same operation,
# side by side on the local PostgreSQL and Redis: one table of ratios, the round trips per request,
# the key check with 1k vs 1M keys. BENCH_ARGS="--big-keys 2000 --duration 3 --rounds 1" for a
# quick check, "--only list,update", "--app-dir ../before" (another checkout). docs/performance.md.
bench: $(TEST_STAMP)
	$(BIN)/python -m benchmarks.compare $(BENCH_ARGS)

# nginx in front of two gunicorn instances on the local PostgreSQL and Redis, 10 minutes of mixed
# traffic, then the verdict (no 5xx, no log errors, flat worker memory). See docs/operations.md; SOAK_ARGS="--duration 120" for a shorter run.
soak: $(TEST_STAMP)
	$(BIN)/python -m benchmarks.soak $(SOAK_ARGS)

# The abuse run of SPEC §11: nginx in front of two gunicorn instances on the local PostgreSQL and
# Redis, eight valid clients and an attacker sharing client 1's address for 30 s, then the verdict
# (valid clients only 2xx, no 5xx, usage counts exact, no log errors). ABUSE_ARGS="--duration 60".
abuse: $(TEST_STAMP)
	$(BIN)/python -m benchmarks.abuse $(ABUSE_ARGS)
