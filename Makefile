# journey-ml: `make help` lists the targets. Targets chain: demo/test/bench install first.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PY     ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# upstream telemetry off, everywhere
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# uv uses the machine's CA store (needed behind TLS-inspecting proxies)
export UV_NATIVE_TLS := 1

.PHONY: help install demo test test-fast bench lint up down status credentials clean distclean lock

help: ## Show this help
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  \033[1m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## Create .venv with the pinned dependency set (constraints.txt)

$(STAMP): pyproject.toml constraints.txt
	@$(PY) -c 'import sys; assert sys.version_info[:2] in ((3,11),(3,12)), "journey-ml needs Python 3.11 or 3.12, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q -p $(BIN)/python -c constraints.txt -e '.[dev]'
	@touch $@

demo: install ## Run the whole loop on the embedded default (SQLite + local MLflow + ephemeral Prefect)
	$(BIN)/journey-ml demo

test: install ## Run the test suite (SQLite and the local PostgreSQL)
	$(BIN)/python -m pytest

test-fast: install ## Tests without the slow end-to-end flow tests
	$(BIN)/python -m pytest -m "not slow"

bench: install ## Benchmarks side by side with the peers; writes BENCHMARKS.md
	$(BIN)/python -m tests.bench.run

lint: install ## Ruff
	$(BIN)/ruff check journey_ml flows tests

up: install ## Start the stack without Docker (PostgreSQL dbs, MLflow, Prefect, migrate, API, worker); eval "$(make -s up)" exports its env too
	VENV=$(VENV) bash infra/stack.sh up

down: ## Stop the stack started by `make up`
	VENV=$(VENV) bash infra/stack.sh down

status: ## Show what `make up` started
	VENV=$(VENV) bash infra/stack.sh status

credentials: ## Print the stack's logins (MLflow, Prefect UI) and API token: the only command that shows them
	@VENV=$(VENV) bash infra/stack.sh credentials

lock: ## Re-resolve constraints.txt from pyproject.toml
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o constraints.txt

clean: ## Remove generated data (.journey/, mlruns/, reports)
	rm -rf .journey mlruns mlartifacts reports

distclean: clean ## Also remove the virtualenv
	rm -rf $(VENV)
