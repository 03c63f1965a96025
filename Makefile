# Vigie: every target sets up what it needs and is idempotent.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv compiled test lint demo up down

venv: $(STAMP)

# Reinstalled when the dependencies change.
$(STAMP): pyproject.toml dev/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,benchmark]'
	touch $@

# The model compiled with mypyc (setup.py), installed apart from the sources: `import
# vigie` still finds the sources; PYTHONPATH=build/compiled runs the compiled model (the
# docker image installs the same build). About 8 minutes on two cores, rebuilt when a
# source changes; CI builds it once, then runs the tests with VIGIE_REQUIRE_COMPILED=1.
COMPILED := build/compiled/.built

compiled: $(COMPILED)

$(COMPILED): $(STAMP) setup.py pyproject.toml $(shell find src/vigie -name '*.py')
	$(BIN)/python -m pip install --quiet "setuptools>=69" wheel "mypy>=1.10"
	rm -rf build/compiled
	VIGIE_COMPILE=1 nice -n 10 $(BIN)/python -m pip install --quiet --no-deps \
		--no-build-isolation --target build/compiled .
	touch $@

# The test fixtures start (and afterwards stop) the test stack themselves, on test ports.
# The compiled model is tested against the sources when build/compiled exists.
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
