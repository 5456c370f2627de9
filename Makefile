# Two entry points for a fresh machine: `make plan` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
# The policy pack's own virtualenv, named in policies/PulumiPolicy.yaml: the CLI runs the pack with
# it and installs nothing into it for a local pack (`pulumi install` in policies/ does the same).
POLICY_VENV := policies/venv
POLICY_STAMP := $(POLICY_VENV)/.requirements-installed
STACK ?= prod
FORMAT ?= text

.PHONY: plan test lint typecheck unit venv policy-venv system-deps bench docs proto clean

# Recreated whenever a requirements file changes; pip's chatter goes to stderr so
# `make -s plan FORMAT=json` prints only the JSON document on stdout.
$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt >&2
	@touch $@

venv: $(STAMP)

$(POLICY_STAMP): policies/requirements.txt
	@test -x $(POLICY_VENV)/bin/python || $(PYTHON) -m venv $(POLICY_VENV) >&2
	@$(POLICY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r policies/requirements.txt >&2
	@touch $@

policy-venv: $(POLICY_STAMP)

plan: $(STAMP)
	@$(BIN)/python -m tools.plan --stack $(STACK) --format $(FORMAT) $(if $(COMPARE),--compare $(COMPARE))

# docs/settings.md, the reference of every sophia: key, from the settings models.
docs: $(STAMP)
	@$(BIN)/python -m tools.settings_doc

# autoscaler/protos/*_pb2*.py from the .proto files, with the pinned grpcio-tools (checked in; a test fails when stale).
proto: $(STAMP)
	@$(BIN)/python -m tools.gen_protos

system-deps:
	@bash scripts/install-system-deps.sh

lint: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	@# -P SCRIPTDIR: a script's `source=` directive names its neighbour, wherever shellcheck runs from.
	shellcheck -x -P SCRIPTDIR components/*/scripts/*.sh failover/*.sh

typecheck: $(STAMP)
	$(BIN)/mypy

# One worker per core; a test file stays on one worker, so its module fixtures (servers, stack runs)
# are made once. `.venv/bin/python -m pytest <path>` runs a part in one process as before.
unit: $(STAMP) system-deps
	$(BIN)/python -m pytest -n auto --dist loadfile

test: lint typecheck unit

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(POLICY_VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis .import_linter_cache
