# Two commands on a fresh machine: `make demo` and `make test`. Everything else is installed by the targets below.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck cfn-lint asl-validate pytest clean

$(STAMP): pyproject.toml layers/shared/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

demo: $(STAMP)
	$(BIN)/billmig demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy layers/shared/billmig local/billmig_local cli/billmig_cli functions

cfn-lint: $(STAMP)
	$(BIN)/cfn-lint template.yaml
	$(BIN)/billmig local translate --output .local/translated.json
	$(BIN)/cfn-lint .local/translated.json

asl-validate: $(NPM_STAMP)
	npx --no-install asl-validator --json-path 'statemachine/*.asl.json'

pytest: $(STAMP)
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test: lint typecheck cfn-lint asl-validate pytest

clean:
	rm -rf $(VENV) node_modules .local .pytest_cache .mypy_cache .ruff_cache
