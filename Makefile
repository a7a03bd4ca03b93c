# Linli — the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Three workers on two cores: most integration tests wait on brokers, databases and timers.
# Every worker starts its own services on free ports. PYTEST_ARGS= runs serially.
PYTEST_ARGS ?= -n 3 --durations=25
ONLY ?=

.PHONY: demo test lint format bench schemas services clean help

help:
	@echo "make demo    broker + cloud (SQLite) + simulated site; prints the dashboard URL and login"
	@echo "make test    install test services (mosquitto, PostgreSQL, VictoriaMetrics, Chromium), lint, run the suite"
	@echo "make lint    ruff + mypy"
	@echo "make bench   run bench/ (ONLY=NAME for one), write bench/results/"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools<81" wheel
	$(BIN)/python -m pip install -q -e ".[all,dev,demo]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/linli demo

services:
	bash scripts/install-services.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# pytest exits 5 when it collected no test: that is a failure here, like any non-zero exit.
test: services $(STAMP) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP) services
	$(BIN)/python -m bench $(if $(ONLY),--only $(ONLY),)

schemas: $(STAMP)
	$(BIN)/linli protocol schema --out docs/schemas

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
