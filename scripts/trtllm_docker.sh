#!/usr/bin/env bash
# The whole workflow inside nvcr.io/nvidia/tensorrt-llm/release:1.2.1 (docker route), on an NVIDIA GPU host:
#
#   scripts/trtllm_docker.sh [config file] [more snakemake arguments...]
#   (make trtllm-docker TRTLLM_CONFIG=config/qwen2.5-7b-trtllm.yaml)
#
# Inside the container, scripts/container_install.py first adds what enginebench's jobs need and the
# image lacks (envs/container.txt, envs/llamacpp.txt) under a constraints file of the container's own
# freeze, so pip never replaces transformers 4.57.3, ModelOpt 0.37, numpy < 2 or anything else
# TensorRT-LLM 1.2.1 runs on; it stops if it would have to. Snakemake gets an environment of its own
# (.venv-container-snakemake in this checkout, kept between runs; envs/container-snakemake.txt), so its
# caps (packaging < 26, pulp < 3.4, ...) never meet the image's versions. Snakemake runs from there,
# and every job with the container's own `python` (PATH is left as the image has it). The run options
# are NVIDIA's for TensorRT-LLM containers (shared memory for the runtime's MPI and IPC, unlimited
# locked memory, a 64 MiB stack).
#
# Host side needs: docker with the NVIDIA container toolkit, this checkout (mounted at /enginebench,
# results/ are written there), llama.cpp's converter fetched (`make setup` did it; vendor/ is mounted
# along), and the Hugging Face cache (mounted, so the snapshot and quantize.py's calibration dataset
# are downloaded once).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${ENGINEBENCH_TRTLLM_IMAGE:-nvcr.io/nvidia/tensorrt-llm/release:1.2.1}
CONFIG=${1:-config/qwen2.5-7b-trtllm.yaml}
shift || true
HF_CACHE=${HF_HOME:-$HOME/.cache/huggingface}
mkdir -p "$HF_CACHE"

# The container's pip builds llama-cpp-python from source (CPU build: a CUDA build of llama.cpp is
# the llama.cpp backend's business, set CMAKE_ARGS to change it).
exec docker run --rm --gpus all --ipc host --ulimit memlock=-1 --ulimit stack=67108864 \
    -v "$PWD":/enginebench -w /enginebench \
    -v "$HF_CACHE":/root/.cache/huggingface -e HF_HOME=/root/.cache/huggingface \
    -e CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" \
    "$IMAGE" \
    bash -c 'set -euo pipefail
             python scripts/container_install.py -r envs/container.txt -r envs/llamacpp.txt \
                 --snakemake-env .venv-container-snakemake
             .venv-container-snakemake/bin/snakemake --cores all --resources gpu=1 "${@:2}" --configfile "$1"' \
    bash "$CONFIG" "$@"
