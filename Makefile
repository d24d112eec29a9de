# Short task targets; each creates/updates the virtualenv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test check lint typecheck fmt bench serve clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## install and start the demo (SQLite, simulated fleet, web UI on :8080)
	$(BIN)/fleetops demo

serve: $(STAMP)
	$(BIN)/fleetops serve

test: $(STAMP)  ## install, start what the tests need, then lint, type-check and run every test
	scripts/ensure-test-services
	$(MAKE) --no-print-directory check
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations

typecheck: $(STAMP)
	$(BIN)/mypy src

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench migrations
	$(BIN)/ruff check --fix src tests bench migrations

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@for b in bench/bench_*.py bench/parse.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache artifacts
