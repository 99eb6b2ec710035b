#!/bin/bash
# call 6: wait for the llama.cpp build, install the model, start the pipeline (background), check llama.cpp on CUDA
source docs/gpu-report/session/env.sh
for i in $(seq 1 60); do [ -f /tmp/install.rc ] && break; sleep 5; done
echo "$(ts) install rc: $(cat /tmp/install.rc 2>/dev/null || echo STILL RUNNING)"; tail -8 /tmp/install.log
[ "$(cat /tmp/install.rc 2>/dev/null)" = 0 ] || exit 1
python3 scripts/airgap.py install --bundle /tmp/b --site /tmp/eb 2>&1 | tail -5
export PATH=/tmp/eb/bin:$PATH
python -c "import llama_cpp; print('llama.cpp GPU offload:', llama_cpp.llama_supports_gpu_offload())"
setsid nohup bash -c 'python3 scripts/airgap.py run --bundle /tmp/b --site /tmp/eb -- --cores 16 --resources gpu=1 --keep-going --prioritize results/gemma3-270m/bench/llamacpp-f16.json results/gemma3-270m/bench/torch-bf16-compiled.json --configfile config/gpu.yaml; echo $? > /tmp/smk.rc' > /tmp/smk.log 2>&1 < /dev/null &
echo "$(ts) pipeline started"
bash docs/gpu-report/session/poll.sh ${1:-420}
