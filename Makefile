# The two commands of the README: `make demo` and `make test`. Each creates the
# virtual environment itself, so a fresh machine needs only Python and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mailconsole demo

# Everything on SQLite, then the store, CLI, engine and console suites again on
# PostgreSQL (a throwaway server the tests start themselves: tests/pg_server.py).
# A test of the SQLite file itself (its lock, WAL, permissions) is marked
# sqlite_only (tests/store_backend.py) and skips there, saying why.
PG_SUITES ?= tests/store tests/cli tests/engine tests/console
test: $(STAMP) deps
	TEXTUAL_ANIMATIONS=none $(BIN)/python -m pytest $(PYTEST_ARGS)
	MAILCONSOLE_TEST_BACKEND=postgresql TEXTUAL_ANIMATIONS=none $(BIN)/python -m pytest $(PYTEST_ARGS) $(PG_SUITES)

# System packages the tests drive for real (tmux, Postfix): installed by `make test`
# itself where it runs as root with apt-get; elsewhere the tests that need them skip.
deps:
	scripts/install-system-deps.sh

bench: $(STAMP)
	bash bench/run.sh

clean:
	rm -rf $(VENV) .pytest_cache

# Several hosts on one machine (network namespaces: PostgreSQL, a mail server, three
# engine hosts, an operator), in the PostgreSQL run; without root they skip.
PG_SUITES += tests/hosts
