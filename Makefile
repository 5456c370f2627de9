# Two entry points for a fresh machine: `make plan` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
STACK ?= prod
FORMAT ?= text

.PHONY: plan test lint typecheck unit venv system-deps bench docs clean

# Recreated whenever a requirements file changes; pip's chatter goes to stderr so
# `make -s plan FORMAT=json` prints only the JSON document on stdout.
$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt >&2
	@touch $@

venv: $(STAMP)

plan: $(STAMP)
	@$(BIN)/python -m tools.plan --stack $(STACK) --format $(FORMAT) $(if $(COMPARE),--compare $(COMPARE))

# docs/settings.md, the reference of every sophia: key, from the settings models.
docs: $(STAMP)
	@$(BIN)/python -m tools.settings_doc

system-deps:
	@bash scripts/install-system-deps.sh

lint: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	@# -P SCRIPTDIR: a script's `source=` directive names its neighbour, wherever shellcheck runs from.
	shellcheck -x -P SCRIPTDIR components/*/scripts/*.sh

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) system-deps
	$(BIN)/python -m pytest

test: lint typecheck unit

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
