# forecast: every stage is a target; EXP selects configs/$(EXP).yaml.   `make help` lists them.
# File targets: `make all` re-runs only the stages whose inputs or config sections changed.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXP ?= demo
PORT ?= 5000
CONFIG := configs/$(EXP).yaml
RUN := runs/$(EXP)
STAMP := .stamps/$(EXP)
STORE := stores/$(EXP).zarr
MODEL := $(RUN)/model/weights.pt
SCORES := $(RUN)/evaluation/test/scores.csv
INSTALLED := $(VENV)/.installed
FORECAST := $(BIN)/forecast
STAGE_ARGS := --config $(CONFIG) --name $(EXP)

# The config's data.source files (a glob): new or changed files make the store stale.
SOURCE_FILES = $(wildcard $(shell sed -n "s/^  source: *['\"]\{0,1\}\([^'\"]*\).*/\1/p" $(CONFIG) 2>/dev/null))
# Raw data each bundled experiment needs, made on first use (nothing is downloaded).
SOURCES_demo := data/demo/.complete
SOURCES_hadcm3 := data/hadcm3/A1B_north_america.nc
SOURCES_ostia := data/ostia/ostia_monthly.nc

.PHONY: help setup prepare train evaluate predict forecast all demo test ui bench lint clean FORCE

help:  ## list the targets
	@grep -hE '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  EXP=<name> picks configs/<name>.yaml (default: demo); PORT=<n> the UI's port (default 5000)"

setup: $(INSTALLED)  ## create .venv: torch==2.13.0 (CPU) first, then the project with dev extras

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

prepare: $(STORE)  ## raw maps -> analysis-ready store stores/$(EXP).zarr

train: $(MODEL)  ## fit the config's network; checkpoints and model under runs/$(EXP)/, run in MLflow

evaluate: $(SCORES)  ## skill on the test split against every reference: runs/$(EXP)/evaluation/

predict: $(MODEL)  ## forecast the latest init time (and any missed) into forecasts/$(EXP)/
	$(FORECAST) predict $(STAGE_ARGS) --init-time latest

forecast: $(STORE) | $(MODEL)  ## the cron job: refresh the store from new sources, forecast what is due
	$(FORECAST) predict $(STAGE_ARGS) --init-time latest

all: evaluate predict  ## prepare -> train -> evaluate -> predict, re-running only what is stale

demo: $(INSTALLED)  ## the whole pipeline on the bundled synthetic default, then where everything is
	@$(MAKE) --no-print-directory all EXP=demo
	@echo
	@cat runs/demo/evaluation/test/summary.txt
	@echo "  forecasts    forecasts/demo/*.nc"
	@echo "  MLflow       make ui  →  http://127.0.0.1:$(PORT)  (experiment 'demo', registered model 'demo')"

# Stamps change only when their config sections do.
$(STAMP).data: FORCE | $(INSTALLED)
	@$(BIN)/python -m pipelines.stamp $(CONFIG) $@ data
$(STAMP).train: FORCE | $(INSTALLED)
	@$(BIN)/python -m pipelines.stamp $(CONFIG) $@ seed windows model optim loader trainer tracking
$(STAMP).evaluate: FORCE | $(INSTALLED)
	@$(BIN)/python -m pipelines.stamp $(CONFIG) $@ evaluate

$(STORE): $(STAMP).data $(SOURCES_$(EXP)) $(SOURCE_FILES) | $(INSTALLED)
	$(FORECAST) prepare $(STAGE_ARGS) --output $(STORE) --overwrite

$(MODEL): $(STORE) $(STAMP).train
	$(FORECAST) train $(STAGE_ARGS) --store $(STORE)

$(SCORES): $(MODEL) $(STAMP).evaluate
	$(FORECAST) evaluate $(STAGE_ARGS) --store $(STORE)

data/demo/.complete: configs/synthetic/demo.yaml | $(INSTALLED)
	$(FORECAST) synth --config $< --output data/demo
	@touch $@

# Real files shipped by the iris-sample-data package (a dev extra), copied out of it.
$(SOURCES_hadcm3) $(SOURCES_ostia): | $(INSTALLED)
	@mkdir -p $(@D)
	$(BIN)/python -c "import iris_sample_data, shutil; shutil.copy(iris_sample_data.path + '/$(@F)', '$@')"

test: $(INSTALLED)  ## install if needed, then run the test suite
	$(BIN)/python -m pytest -q

ui: $(INSTALLED)  ## MLflow UI over the project's tracking store, on 127.0.0.1 only
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port $(PORT)

bench: $(INSTALLED)  ## benchmarks: data pipeline, model, prediction (figures printed)
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_model.py
	$(BIN)/python benchmarks/bench_predict.py
	$(BIN)/python benchmarks/bench_tracking.py

lint: $(INSTALLED)  ## ruff
	$(BIN)/ruff check .

clean:  ## remove generated data, stores, runs, forecasts and the local tracking store (keeps .venv)
	rm -rf data stores runs forecasts .stamps mlflow.db mlartifacts .pytest_cache
