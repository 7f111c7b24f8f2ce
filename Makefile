# forecast: every stage is a target; EXP selects configs/$(EXP).yaml.   `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXP ?= demo
CONFIG := configs/$(EXP).yaml
STORE := stores/$(EXP).zarr
INSTALLED := $(VENV)/.installed

# Raw data each bundled experiment needs, made on first use (nothing is downloaded).
SOURCES_demo := data/demo/.complete
SOURCES_hadcm3 := data/hadcm3/A1B_north_america.nc

.PHONY: help setup demo test prepare lint bench clean

help:  ## list the targets
	@grep -hE '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  EXP=<name> picks configs/<name>.yaml (default: demo)"

setup: $(INSTALLED)  ## create .venv: torch==2.13.0 (CPU) first, then the project with dev extras

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

demo: $(INSTALLED)  ## run the pipeline on the bundled default (synthetic advecting fields)
	@$(MAKE) --no-print-directory prepare EXP=demo

prepare: $(STORE)  ## raw maps -> analysis-ready store stores/$(EXP).zarr

$(STORE): $(CONFIG) $(SOURCES_$(EXP)) | $(INSTALLED)
	$(BIN)/forecast prepare --config $(CONFIG) --output $(STORE) --overwrite

data/demo/.complete: configs/synthetic/demo.yaml | $(INSTALLED)
	$(BIN)/forecast synth --config $< --output data/demo
	@touch $@

data/hadcm3/A1B_north_america.nc: | $(INSTALLED)
	@mkdir -p $(@D)
	$(BIN)/python -c "import iris_sample_data, shutil; shutil.copy(iris_sample_data.path + '/A1B_north_america.nc', '$@')"

test: $(INSTALLED)  ## install if needed, then run the test suite
	$(BIN)/python -m pytest -q

lint: $(INSTALLED)  ## ruff
	$(BIN)/ruff check .

bench: $(INSTALLED)  ## data-pipeline benchmark (figures printed)
	$(BIN)/python benchmarks/bench_data.py

clean:  ## remove generated data, stores and runs (keeps .venv)
	rm -rf data stores runs .pytest_cache
