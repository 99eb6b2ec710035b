# enginebench: `make report` builds and measures the default config; `make test` runs every test.
# Both set themselves up first (.venv, torch 2.13.0 CPU installed before everything else).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= $(shell nproc)
CONFIG ?= config/config.yaml
SMK    := $(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG)

# Rules run `python`: make it the venv's, whether or not the venv is activated.
export PATH := $(abspath $(BIN)):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup report plan test test-fast lint bench-pipeline clean

setup: $(VENV)/.setup-done

$(VENV)/.setup-done: envs/torch.txt envs/requirements.txt envs/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r envs/torch.txt
	$(BIN)/pip install --quiet -r envs/requirements.txt -r envs/dev.txt
	touch $@

report: setup
	$(SMK) results/report.md

plan: setup
	$(SMK) --dry-run results/report.md

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(SMK) --lint
	$(BIN)/ruff check scripts tests

bench-pipeline: setup
	$(BIN)/python scripts/bench_pipeline.py

clean:
	rm -rf results .snakemake
