# `make` lists the targets. `make demo` and `make test` are the two commands of the README.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# the browser test drives the system chromium: never download a browser
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
.DEFAULT_GOAL := help

.PHONY: help install system-deps lint test test-unit test-rules kube-manifests bench demo dev clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/offload-pipeline: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/offload-pipeline ## Python virtualenv with the package and dev tools

system-deps: ## Debian packages: prometheus (promtool), alertmanager (amtool), pushgateway
	bash scripts/install-system-deps.sh

lint: install ## ruff lint and format check, mypy type check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install system-deps ## the whole test suite (real SQLite, PostgreSQL, Iceberg, Dagster, promtool)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install ## only the fast tests without a marker
	$(BIN)/python -m pytest -m "not integration and not e2e" $(PYTEST_ARGS)

test-rules: install system-deps ## promtool/amtool checks of docker/ configs
	$(BIN)/python -m pytest tests/rules $(PYTEST_ARGS)

kube-manifests: install ## regenerate deploy/kubernetes/manifests from the rules, dashboard and config
	$(BIN)/python deploy/kubernetes/generate.py

bench: install system-deps ## throughput, memory, fixed cost, metrics and reconciliation cost (prints figures)
	$(BIN)/python benchmarks/offload_throughput.py
	$(BIN)/python benchmarks/fixed_cost.py
	$(BIN)/python benchmarks/metrics_overhead.py
	$(BIN)/python benchmarks/postgres_throughput.py
	$(BIN)/python benchmarks/reconcile_cost.py
	$(BIN)/python benchmarks/many_tables.py
	$(BIN)/python benchmarks/dlt_compare.py

demo: install system-deps ## seed the embedded hot tier, start the feed and the Dagster UI
	$(BIN)/offload-pipeline demo

dev: install ## dagster dev on the workspace (no feed)
	DAGSTER_HOME=$(CURDIR)/dagster_home $(BIN)/dagster dev -w workspace.yaml

clean: ## remove demo data and local Dagster state (keeps dagster_home/dagster.yaml)
	rm -rf data .offload
	find dagster_home -mindepth 1 ! -name dagster.yaml ! -name README.md -exec rm -rf {} +
