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
# The SAM CLI lives in a virtualenv of its own: its pins (boto3, pydantic, cfn-lint) are not the dev extra's.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed
SAM_BUILD_DIR := .aws-sam/build
# `sam build` needs the runtime's Python (python3.12) on PATH; pyenv's are looked for too.
PYTHON312 ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && command -v "$$p" && break; done)
# Built for this machine's instruction set, so the test can import every built handler here (Lambda runs arm64).
BUILD_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)

.PHONY: demo test lint typecheck cfn-lint asl-validate sam-validate sam-build pytest clean console-assets

$(STAMP): pyproject.toml layers/shared/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(SAM_STAMP):
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet 'aws-sam-cli>=1.140,<2'
	touch $(SAM_STAMP)

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
	@# The Metronome state machine's definition is a `Fn::Join` of over 1,000 lines, which cfn-lint resolves
	@# recursively (Python's default limit of 1,000 frames): the same cfn-lint, with room for it.
	$(BIN)/python -c 'import sys; sys.setrecursionlimit(20000); sys.argv[0] = "cfn-lint"; from cfnlint.runner import main; main()' \
		--ignore-checks W1020 -- .local/translated.json

# Every ASL file, validated by the npm package asl-validator (cfn-lint does not look inside SAM state machines).
# ARN checks are off because Resources are `${...}` substitutions until deployment.
asl-validate: $(NPM_STAMP)
	@for f in statemachine/*.asl.json; do npx --no-install asl-validator --no-arn-check --json-path $$f || exit 1; done

sam-validate: $(SAM_STAMP)
	$(SAM) validate --lint

sam-build: $(SAM_STAMP)
	@test -n "$(PYTHON312)" || { echo "sam build needs Python 3.12 (the Lambda runtime) and found none:" \
		"install it (e.g. 'pyenv install 3.12') or pass PYTHON312=/path/to/python3.12"; exit 1; }
	PATH="$(dir $(PYTHON312)):$$PATH" $(SAM) build --cached --build-dir $(SAM_BUILD_DIR) \
		--parameter-overrides Architecture=$(BUILD_ARCH)

pytest: $(STAMP) sam-build $(VIZ_ASSET) $(CHROMIUM)
	BILLMIG_SAM_BUILD_DIR=$(SAM_BUILD_DIR) BILLMIG_PYTHON312=$(PYTHON312) \
		$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test: lint typecheck cfn-lint asl-validate sam-validate pytest

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam node_modules .local .pytest_cache .mypy_cache .ruff_cache $(CONSOLE_VENDOR)
