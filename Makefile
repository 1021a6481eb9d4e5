# Two entry points for a fresh machine: `make run` and `make test`. Everything else is optional.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# Local state (artifacts, Dagster instance, W&B offline runs) stays in one folder of the checkout.
export RENTAL_PIPELINE_HOME ?= $(CURDIR)/.rental_pipeline
export DAGSTER_HOME ?= $(RENTAL_PIPELINE_HOME)/dagster
export WANDB_MODE ?= offline

DEFS := -m rental_pipeline.definitions

.PHONY: setup run test dev validate materialize-clean clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

$(DAGSTER_HOME):
	mkdir -p $@

## Build the whole graph on the built-in synthetic listings and print the test MAE.
run: setup | $(DAGSTER_HOME)
	$(BIN)/dagster job execute $(DEFS) -j training_job
	$(BIN)/rental-pipeline summary

## Run the test suite.
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Open the web UI on http://127.0.0.1:3000
dev: setup | $(DAGSTER_HOME)
	$(BIN)/dagster dev

validate: setup | $(DAGSTER_HOME)
	$(BIN)/dagster definitions validate $(DEFS)

## Re-materialize clean_sample and everything downstream of it, reusing the stored raw_data.
materialize-clean: setup | $(DAGSTER_HOME)
	$(BIN)/dagster asset materialize $(DEFS) --select 'key:"clean_sample"+'

clean:
	rm -rf $(RENTAL_PIPELINE_HOME)
