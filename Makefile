# Vigie: every target sets up what it needs and is idempotent.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test unit integration faults lint lock compiled up down

# The virtualenv, installed from the lock files: what the demo needs (the runtime, the
# embedded warehouse and the development part, no test or benchmark tools), then what the
# tests need on top. The image installs requirements/runtime.lock alone.
$(VENV)/.demo: requirements/demo.lock pyproject.toml dev/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-deps -r requirements/demo.lock
	$(BIN)/python -m pip install --quiet --no-deps -e . -e dev
	touch $@

$(VENV)/.test: $(VENV)/.demo requirements/dev.lock
	$(BIN)/python -m pip install --quiet -r requirements/dev.lock
	touch $@

# Starts the local stack itself; each run gets its own topics and .vigie/demo/<run>/, and
# its summary ends with the commands that read that run (--run <id>).
demo: $(VENV)/.demo
	$(BIN)/vigie demo

# Fast failure first: lint, the tests that need no service, the compiled model, then
# the real stack (the fixtures start Kafka and Redis on test ports and stop them).
test: lint unit compiled integration

unit: $(VENV)/.test
	$(BIN)/python -m pytest -m "not integration and not e2e and not browser and not compiled"

# The fault suite (tests/faults, about 7 minutes) is part of it. `make faults` runs it alone.
integration: $(VENV)/.test
	$(BIN)/python -m pytest -m "integration or e2e or browser or compiled"

faults: $(VENV)/.test
	$(BIN)/python -m pytest -m faults -s

# The model compiled with mypyc (setup.py), installed apart from the sources: `import
# vigie` still finds the sources; PYTHONPATH=build/compiled runs the compiled model (the
# docker image installs the same build). About 8 minutes on two cores, rebuilt when a
# source changes; CI requires it (VIGIE_REQUIRE_COMPILED=1: tests/unit/test_compiled.py
# then fails instead of skipping without it).
COMPILED := build/compiled/.built

compiled: $(COMPILED)

$(COMPILED): $(VENV)/.test setup.py pyproject.toml $(shell find src/vigie -name '*.py')
	rm -rf build/compiled build/lib.* build/temp.*  # no module compiled before left behind
	VIGIE_COMPILE=1 nice -n 10 $(BIN)/python -m pip install --quiet --no-deps \
		--no-build-isolation --target build/compiled .
	touch $@

# All three checks run; the target fails if any of them does.
lint: $(VENV)/.test
	@status=0; \
	$(BIN)/ruff check src dev/src tests bench || status=1; \
	$(BIN)/ruff format --check src dev/src tests bench || status=1; \
	$(BIN)/mypy || status=1; \
	exit $$status

# The lock files, from pyproject.toml and dev/pyproject.toml (uv resolves, pip installs):
# runtime (the image), demo (make demo), dev (make test and CI).
LOCKS := runtime demo dev

lock: $(VENV)/.test
	$(BIN)/python -m pip install --quiet uv
	for lock in $(LOCKS); do \
		$(BIN)/uv pip compile --quiet --python-version 3.11 --no-emit-package vigie \
			--no-emit-package vigie-dev requirements/$$lock.in -o requirements/$$lock.lock \
			|| exit 1; \
	done

up: $(VENV)/.demo
	$(BIN)/vigie stack up

down: $(VENV)/.demo
	$(BIN)/vigie stack down
