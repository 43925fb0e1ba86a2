# Two commands on a fresh machine: `make run` and `make test`. Everything else is plumbing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
DEMO_SECONDS ?= 60
DEMO_RATE ?= 20
# Extra `sam deploy` arguments, e.g. DEPLOY_ARGS=--guided the first time.
DEPLOY_ARGS ?=
# sam build looks for python3.11 on PATH: the venv's comes first.
SAM_ENV := PATH="$(CURDIR)/$(BIN):$$PATH" SAM_CLI_TELEMETRY=0
# checkov has its own venv: it pins boto3 1.35 exactly, which aws-sam-cli's boto3 pin excludes.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

.PHONY: setup run test test-unit test-integration lint format up down status clean bench browser glue-assets glue-docker
.PHONY: deploy package-sizes

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

## run: start the local stack, stream about a minute of realistic traffic, drain, print a summary.
run: setup
	$(BIN)/clickstream demo --profile realistic --rate $(DEMO_RATE) --duration $(DEMO_SECONDS)

## test: lint, package sizes, then the whole suite (unit, integration and end-to-end).
test: setup lint browser package-sizes
	$(BIN)/pytest

test-unit: setup
	$(BIN)/pytest tests/unit

test-integration: setup
	$(BIN)/pytest tests/integration tests/e2e

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	rm -f $(CHECKOV_VENV)/.installed-* && touch $@

## lint: ruff, the import contracts (pyproject's [tool.importlinter]), cfn-lint, and checkov on the
## template (a check the template skips says why in the resource's Metadata); --skip-download
## keeps checkov off the network.
lint: setup $(CHECKOV_STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	PYTHONPATH=. $(BIN)/lint-imports --no-cache
	$(BIN)/cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --quiet --compact --skip-download

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

## glue-docker: run one Glue job (JOB=RawToCuratedEventsJob or its name) in AWS's Glue 5.0 image against the local stack.
glue-docker: setup
	$(BIN)/clickstream glue-docker $(JOB)

## deploy: sam build, sam deploy (samconfig.toml, plus DEPLOY_ARGS), then the Glue jobs' code.
deploy: setup
	$(SAM_ENV) $(BIN)/sam build --build-dir .aws-sam/build --cached
	$(SAM_ENV) $(BIN)/sam deploy --template-file .aws-sam/build/template.yaml --no-fail-on-empty-changeset $(DEPLOY_ARGS)
	$(BIN)/python glue_jobs/bundle.py --upload

## package-sizes: sam build, then each function's and layer's zip size against its budget.
package-sizes: setup
	$(SAM_ENV) $(BIN)/python tools/package_sizes.py

## bench: benchmarks, each a ratio against a baseline measured in the same run.
bench: setup
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_lake.py
	$(BIN)/python bench/bench_search.py
	$(BIN)/python bench/bench_stream.py
	$(BIN)/python bench/bench_growth.py
	$(BIN)/python bench/bench_scan.py

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
