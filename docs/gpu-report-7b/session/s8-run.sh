#!/bin/bash
# Session 8, call 1 (carry bundle/wheels bundle/bundle.json vendor/qwen2-tokenizer.gguf.gz): the bundle's
# wheels installed as `airgap.py install` installs them (no llama.cpp build: nothing here runs llama.cpp),
# then the pipeline re-runs the compiled PyTorch engine (bench, samples, quality) and the preflight,
# with the command `airgap.py run` runs. Waits up to $1 seconds.
source docs/gpu-report-7b/session/env.sh
deadline=$(( $(date +%s) + ${1:-560} ))
echo "$(ts) start in $PWD"
nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader; nproc
mkdir -p /tmp/work /tmp/eb/lib
cp -a . /tmp/work/ && rm -rf /tmp/work/bundle /tmp/work/.git
gunzip -c vendor/qwen2-tokenizer.gguf.gz > /tmp/work/vendor/qwen2-tokenizer.gguf
python3 -m pip install --quiet --no-index --no-deps --no-compile --upgrade --target /tmp/eb/lib bundle/wheels/*.whl
cd /tmp/work
python3 -c "import sys; sys.path.insert(0, 'scripts'); from pathlib import Path; from enginebench.airgap import python_wrapper; python_wrapper(Path('/tmp/eb'))"
echo "$(ts) wheels installed"
M=results/qwen2.5-7b
rm -f /tmp/smk.rc
setsid nohup bash -c "PATH=/tmp/eb/bin:\$PATH HF_HUB_OFFLINE=1 /tmp/eb/bin/python -m snakemake --cores 16 --resources gpu=1 --keep-going --configfile $CONFIG -- results/host/preflight.json $M/bench/torch-bf16-compiled.json $M/samples/torch-bf16-compiled.json $M/quality/torch-bf16-compiled.json; echo \$? > /tmp/smk.rc" > /tmp/smk.log 2>&1 < /dev/null &
echo "$(ts) pipeline started"
bash /tmp/work/docs/gpu-report-7b/session/poll.sh $(( deadline - $(date +%s) ))
grep -h -E "tokens/s|captured" /tmp/work/results/logs/qwen2.5-7b/bench/torch-bf16-compiled.log 2>/dev/null | tail -5
