# Two commands matter: `make demo` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup chromium demo up down test lint fmt bench soak clean

setup: $(STAMP) node_modules/.installed

# The portal's browser tests drive Debian's Chromium (Playwright never downloads a browser here).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	  else echo "install Debian's chromium (sudo apt-get install chromium) for the portal tests"; fi; }

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(BIN)/python -m devstack.demo

up: setup
	$(BIN)/python -m devstack up --data demo

down:
	$(BIN)/python -m devstack down

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: setup chromium lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

soak: setup
	$(BIN)/python -m tests.soak $(SOAK_ARGS)  # default: 10000 customers, seed 11

clean:
	rm -rf .devstack .pytest_cache .ruff_cache
