# Vigie: every target sets up what it needs and is idempotent.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint demo up down

venv: $(STAMP)

# Reinstalled when the dependencies change.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,benchmark]'
	touch $@

# The test fixtures start (and afterwards stop) the test stack themselves, on test ports.
test: venv
	$(BIN)/python -m pytest

# All three checks run; the target fails if any of them does.
lint: venv
	@status=0; \
	$(BIN)/ruff check src tests || status=1; \
	$(BIN)/ruff format --check src tests || status=1; \
	$(BIN)/mypy || status=1; \
	exit $$status

up: venv
	$(BIN)/vigie stack up

down: venv
	$(BIN)/vigie stack down

# Starts the stack itself; each run gets its own topics and .vigie/demo/<run>/ directory.
demo: venv
	$(BIN)/vigie demo
