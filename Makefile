# Vigie: every target sets up what it needs and is idempotent.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv compile test lint demo up down

venv: $(STAMP)

# Reinstalled when the dependencies change.
$(STAMP): pyproject.toml dev/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,benchmark]'
	touch $@

# The detectors compiled with mypyc next to their sources (see setup.py), rebuilt when a
# source changes; mypyc leaves unchanged C alone, so the touch marks every module current.
DETECTOR_SOURCES := $(wildcard src/vigie/model/*.py)
COMPILED := $(VENV)/.compiled

compile: $(COMPILED)

$(COMPILED): $(STAMP) $(DETECTOR_SOURCES) setup.py
	VIGIE_COMPILE=1 $(BIN)/python setup.py --quiet build_ext --inplace
	touch src/vigie/model/*.so $@

# The test fixtures start (and afterwards stop) the test stack themselves, on test ports.
test: venv compile
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
