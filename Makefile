# Short task targets; each creates/updates the virtualenv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test check lint typecheck fmt bench serve lock clean compile

# Every package, transitive ones included, comes from uv.lock (exact versions and hashes); uv
# itself is bootstrapped from scripts/uv-requirements.txt (hashed too). `uv sync --locked` refuses a
# lock that no longer matches pyproject.toml, and removes whatever the lock does not name.
$(BIN)/uv: scripts/uv-requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--require-hashes --no-deps -r scripts/uv-requirements.txt
	touch $(BIN)/uv

# Bytecode is compiled at install (and our sources before each run), so no process pays for
# compiling every module it imports, even where PYTHONDONTWRITEBYTECODE is set: the CLI's start-up
# and the suite's hundreds of `fleetops` processes depend on it.
$(STAMP): pyproject.toml uv.lock $(BIN)/uv
	$(BIN)/uv sync --locked --quiet --compile-bytecode --extra dev
	touch $(STAMP)

compile: $(STAMP)
	$(BIN)/python -m compileall -q -j 0 src tests bench > /dev/null

lock: $(BIN)/uv  ## re-resolve on purpose: every transitive package to the newest pyproject.toml allows
	$(BIN)/uv lock --upgrade
	$(BIN)/uv export --frozen --no-emit-project --extra dev --no-header \
		| awk '/^uv==/{p=1;print;next} p&&/^ /{print;next} {p=0}' > scripts/uv-requirements.txt
	rm -f $(STAMP)

demo: compile  ## install and start the demo (SQLite, simulated fleet, web UI on :8080)
	$(BIN)/fleetops demo

serve: compile
	$(BIN)/fleetops serve

test: compile  ## install, start what the tests need, then lint, type-check and run every test
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
	$(BIN)/uv sync --locked --quiet --compile-bytecode --extra dev --extra bench
	rm -f $(STAMP)
	@for b in bench/bench_*.py bench/parse.py bench/parse_cli.py bench/simulation.py bench/startup.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache artifacts
