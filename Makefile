# enginebench: `make report` builds and measures the default config; `make test` runs every test.
# Both set themselves up first (.venv, torch 2.13.0 CPU installed before everything else).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= $(shell nproc)
CONFIG ?= config/config.yaml
SMK    := $(BIN)/snakemake --cores $(CORES)
CFG    := --configfile $(CONFIG)  # last on the line: it takes every word after it as a file

LLAMA_CPP_PYTHON := 0.3.36
CONVERTER := vendor/llama.cpp/convert_hf_to_gguf.py

# Rules run `python`: make it the venv's, whether or not the venv is activated.
export PATH := $(abspath $(BIN)):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# llama-cpp-python compiles from source: text-only (no multimodal library), CPU build.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF

.PHONY: setup report plan test test-fast lint bench-pipeline clean

setup: $(VENV)/.setup-done $(CONVERTER)

$(VENV)/.setup-done: envs/torch.txt envs/requirements.txt envs/llamacpp.txt envs/dev.txt envs/slurm.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r envs/torch.txt
	$(BIN)/pip install --quiet -r envs/requirements.txt -r envs/dev.txt -r envs/slurm.txt
	@echo "Installing llama-cpp-python $(LLAMA_CPP_PYTHON): compiles from source on first install (8-20 min on 2 cores)"
	$(BIN)/pip install --quiet -r envs/llamacpp.txt
	touch $@

# llama.cpp's HF -> GGUF converter lives only in the llama-cpp-python sdist (with its conversion/ and
# gguf-py/ siblings). Fetched here, never committed (vendor/ is ignored).
$(CONVERTER): | $(VENV)/.setup-done
	rm -rf vendor/.sdist && mkdir -p vendor/.sdist
	$(BIN)/pip download --quiet --no-deps --no-binary :all: -d vendor/.sdist llama-cpp-python==$(LLAMA_CPP_PYTHON)
	tar -xzf vendor/.sdist/llama_cpp_python-$(LLAMA_CPP_PYTHON).tar.gz -C vendor/.sdist \
	    llama_cpp_python-$(LLAMA_CPP_PYTHON)/vendor/llama.cpp/convert_hf_to_gguf.py \
	    llama_cpp_python-$(LLAMA_CPP_PYTHON)/vendor/llama.cpp/conversion \
	    llama_cpp_python-$(LLAMA_CPP_PYTHON)/vendor/llama.cpp/gguf-py \
	    llama_cpp_python-$(LLAMA_CPP_PYTHON)/vendor/llama.cpp/LICENSE
	rm -rf vendor/llama.cpp
	mv vendor/.sdist/llama_cpp_python-$(LLAMA_CPP_PYTHON)/vendor/llama.cpp vendor/llama.cpp
	rm -rf vendor/.sdist

report: setup  # the default target: results/report.md, then the quality gate
	$(SMK) all $(CFG)

plan: setup
	$(SMK) --dry-run all $(CFG)

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(SMK) --lint $(CFG)
	$(BIN)/ruff check scripts tests

bench-pipeline: setup
	$(BIN)/python scripts/bench_pipeline.py

clean:
	rm -rf results .snakemake
