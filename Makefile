# Two commands on a fresh machine: `make run` and `make test`. Everything else is plumbing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
DEMO_SECONDS ?= 60
DEMO_RATE ?= 20

.PHONY: setup run test test-unit test-integration lint format up down status clean bench browser glue-assets

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

## run: start the local stack, stream about a minute of realistic traffic, drain, print a summary.
run: setup
	$(BIN)/clickstream demo --profile realistic --rate $(DEMO_RATE) --duration $(DEMO_SECONDS)

## test: lint, then the whole suite (unit, integration and end-to-end).
test: setup lint browser
	$(BIN)/pytest

test-unit: setup
	$(BIN)/pytest tests/unit

test-integration: setup
	$(BIN)/pytest tests/integration tests/e2e

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/cfn-lint template.yaml

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

up: setup
	$(BIN)/clickstream local up

down: setup
	$(BIN)/clickstream local down

status: setup
	$(BIN)/clickstream local status

clean:
	-$(BIN)/clickstream local down 2>/dev/null
	rm -rf .local .aws-sam .pytest_cache .ruff_cache

## glue-assets: build the Glue jobs' code bundle and upload it to the deployed stack (after `sam deploy`).
glue-assets: setup
	$(BIN)/python glue_jobs/bundle.py --upload

## bench: benchmarks, each a ratio against a baseline measured in the same run.
bench: setup
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_lake.py
	$(BIN)/python bench/bench_search.py
	$(BIN)/python bench/bench_stream.py

## browser: headless Chromium for the dashboard page tests (Debian package; needs root).
browser:
	@if [ -x /usr/bin/chromium ]; then \
		echo "chromium present: /usr/bin/chromium"; \
	elif [ "$$(id -u)" -eq 0 ]; then \
		apt-get update && apt-get install -y --no-install-recommends chromium fonts-dejavu-core; \
	else \
		echo "chromium is missing: run 'sudo make browser' (or install Debian's chromium and fonts-dejavu-core)"; \
		exit 1; \
	fi
