#!/bin/bash
# call 1: carry bundle/wheels bundle/sdist bundle/bundle.json vendor/qwen2-tokenizer.gguf.gz (60.8 MiB with the tree)
# Install the wheels and build llama-cpp-python for CUDA (background), make the placeholder snapshot
# meanwhile, probe the compiled decode loop, then start the pipeline once the build is done.
source docs/gpu-report-7b/session/env.sh
deadline=$(( $(date +%s) + ${1:-540} ))
echo "$(ts) start in $PWD"
mkdir -p /tmp/b /tmp/work
cp -r bundle/wheels bundle/sdist bundle/bundle.json /tmp/b/
nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader
nproc; df -h / /tmp | tail -2; free -g | head -2; python3 --version
cp -a . /tmp/work/ && rm -rf /tmp/work/bundle /tmp/work/.git
gunzip -c vendor/qwen2-tokenizer.gguf.gz > /tmp/work/vendor/qwen2-tokenizer.gguf
setsid nohup bash -c 'python3 scripts/airgap.py install --bundle /tmp/b --site /tmp/eb --without-model; echo $? > /tmp/install.rc' > /tmp/install.log 2>&1 < /dev/null &
for i in $(seq 1 60); do [ -f /tmp/eb/.wheels.json ] && break; sleep 3; done
echo "$(ts) wheels installed: $(ls /tmp/eb/.wheels.json)"
cd /tmp/work
# airgap.py writes the `python` wrapper the rules run only once its build is done: write it now
python3 -c "import sys; sys.path.insert(0, 'scripts'); from pathlib import Path; from enginebench.airgap import python_wrapper; python_wrapper(Path('/tmp/eb'))"
setsid nohup bash -c "PATH=/tmp/eb/bin:\$PATH python -m snakemake --cores 16 results/qwen2.5-7b/snapshot --configfile $CONFIG; echo \$? > /tmp/snapshot.rc" > /tmp/snapshot.log 2>&1 < /dev/null &
PYTHONPATH=/tmp/eb/lib timeout 300 python3 docs/gpu-report-7b/session/probe.py 2>&1 | grep -v Warning | tail -12
echo "$(ts) probe done; snapshot rc $(cat /tmp/snapshot.rc 2>/dev/null || echo running)"
bash /tmp/work/docs/gpu-report-7b/session/resume.sh $(( deadline - $(date +%s) ))
