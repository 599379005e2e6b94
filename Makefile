# Two commands on a fresh machine: `make demo` and `make test`. Everything else is installed by the targets below.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
# The console draws graphs with Graphviz compiled to WebAssembly (npm @viz-js/viz), shipped as a package asset.
CONSOLE_VENDOR := cli/billmig_cli/console/static/vendor
VIZ_ASSET := $(CONSOLE_VENDOR)/viz-global.js
# The console's browser tests run Debian's chromium (never a downloaded browser build).
CHROMIUM := /usr/bin/chromium
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck cfn-lint asl-validate pytest clean console-assets

$(STAMP): pyproject.toml layers/shared/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

$(VIZ_ASSET): $(NPM_STAMP)
	mkdir -p $(CONSOLE_VENDOR)
	cp node_modules/@viz-js/viz/dist/viz-global.js $(VIZ_ASSET)

console-assets: $(VIZ_ASSET)

$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

demo: $(STAMP) $(VIZ_ASSET)
	$(BIN)/billmig demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Strict on the domain package (pyproject.toml); each handler is checked on its own (they are all `app.py`).
typecheck: $(STAMP)
	$(BIN)/mypy layers/shared/billmig local/billmig_local cli/billmig_cli
	@for f in functions/*/app.py; do $(BIN)/mypy --strict $$f || exit 1; done

cfn-lint: $(STAMP)
	$(BIN)/cfn-lint template.yaml
	$(BIN)/billmig local translate --output .local/translated.json
	@# W1020: aws-sam-translator itself resolves the Stage parameter inside the layer's LayerName `Fn::Sub`,
	@# leaving a Sub with no variables in its output; that line is the translator's, not ours.
	$(BIN)/cfn-lint --ignore-checks W1020 -- .local/translated.json

# Every ASL file, validated by the npm package asl-validator (cfn-lint does not look inside SAM state machines).
# ARN checks are off because Resources are `${...}` substitutions until deployment.
asl-validate: $(NPM_STAMP)
	@for f in statemachine/*.asl.json; do npx --no-install asl-validator --no-arn-check --json-path $$f || exit 1; done

pytest: $(STAMP) $(VIZ_ASSET) $(CHROMIUM)
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

test: lint typecheck cfn-lint asl-validate pytest

clean:
	rm -rf $(VENV) node_modules .local .pytest_cache .mypy_cache .ruff_cache $(CONSOLE_VENDOR)
