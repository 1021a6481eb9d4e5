# Two entry points for a fresh machine: `make run` and `make test`. Everything else is optional.

PYTHON ?= python3
VENV ?= .venv
# Extras installed into the venv. `dev` is what every test run needs; `make test` adds the extras of
# the tests that need a browser, PostgreSQL or an S3 server (they skip, saying why, without them);
# CI adds k8s to load the Kubernetes code location. One stamp per set of extras.
EXTRAS ?= dev
TEST_EXTRAS ?= dev,browser,postgres,s3
BIN := $(VENV)/bin
# Test workers: one per core (pytest-xdist). PYTEST_WORKERS=0 runs the suite in one process.
PYTEST_WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

# Local state (artifacts, Dagster instance, W&B offline runs) stays in one folder of the checkout.
export RENTAL_PIPELINE_HOME ?= $(CURDIR)/.rental_pipeline
export DAGSTER_HOME ?= $(RENTAL_PIPELINE_HOME)/dagster
export WANDB_MODE ?= offline

DEFS := -m rental_pipeline.definitions

.PHONY: setup run test test-fast lint docs dev validate materialize-clean clean bench

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-%: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$*]"
	touch $@

setup: $(VENV)/.installed-$(EXTRAS)

$(DAGSTER_HOME):
	mkdir -p $@

# The project's instance config (SQLite, one-run queue), copied once: an existing one is kept.
$(DAGSTER_HOME)/dagster.yaml: | $(DAGSTER_HOME)
	cp dagster.yaml $@

# `dagster job execute` warns on every use that the `dg launch` command of Dagster's newer `dg` CLI
# supersedes it; that CLI is not part of this project, and the command works the same, so the
# warning is silenced here. run-logging.yaml keeps the console at INFO and up.
QUIET_EXECUTE := PYTHONWARNINGS='ignore:Function `job_execute_command` is superseded' $(BIN)/dagster job execute

## Build training_job on the built-in synthetic listings (raw listings to an evaluated model, promoted to prod if
## it is better), then print the summary with the test MAE. The sweep (sweep_job) and the batch predictions
## (predict_job) are jobs of their own: the summary shows them as not part of training_job.
run: setup | $(DAGSTER_HOME)/dagster.yaml
	$(QUIET_EXECUTE) $(DEFS) -j training_job -c run-logging.yaml
	$(BIN)/rental-pipeline summary --job training_job

## Run the whole test suite, slow tests included, as CI does. Unless RENTAL_PIPELINE_TEST_S3_ENDPOINT names
## a server already, a throwaway S3 server (the s3 extra's `weed`) runs for the duration, so the S3 tests run too.
test: $(VENV)/.installed-$(TEST_EXTRAS) | $(DAGSTER_HOME)/dagster.yaml
	$(if $(wildcard $(BIN)/weed),WEED=$(abspath $(BIN)/weed)) .ci/with-s3-server $(PYTEST) $(PYTEST_ARGS)

## Run the fast tier: everything not marked slow.
test-fast: setup | $(DAGSTER_HOME)/dagster.yaml
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

## Lint (ruff: pycodestyle, pyflakes, import order; configured in pyproject.toml).
lint: setup
	$(BIN)/ruff check .

## Build the documentation site from docs/ into site/ (git-ignored). --strict: a broken link or anchor, or a
## page missing from mkdocs.yml's nav, fails. Needs the docs extra: EXTRAS plus docs unless it is there already.
comma := ,
DOCS_EXTRAS := $(if $(filter docs,$(subst $(comma), ,$(EXTRAS))),$(EXTRAS),$(EXTRAS)$(comma)docs)
docs: $(VENV)/.installed-$(DOCS_EXTRAS)
	$(BIN)/mkdocs build --strict --site-dir site

## Open the web UI on http://127.0.0.1:3000
dev: setup | $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev

validate: setup | $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster definitions validate $(DEFS)

## Re-materialize clean_sample and everything downstream of it, reusing the stored raw_data.
materialize-clean: setup | $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster asset materialize $(DEFS) --select 'key:"clean_sample"+'

## Benchmarks: Dagster overhead, incremental runs, scale, model, predict throughput, start-up, and the
## fixed cost of a reference-forest run against the plain script, with where its time goes.
## Prints a markdown table, writes benchmarks/results/latest.json. BENCH_ARGS=--quick for small sizes.
bench: setup
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(RENTAL_PIPELINE_HOME)
