#!/bin/bash
# calls 1-2: once llama-cpp-python is built and the snapshot made, start the pipeline (once); then wait
# for it until $1 seconds have passed
source /tmp/work/docs/gpu-report-7b/session/env.sh
end=$(( $(date +%s) + ${1:-500} ))
while [ ! -f /tmp/install.rc ] && [ $(date +%s) -lt $end ]; do sleep 5; done
echo "$(ts) install rc: $(cat /tmp/install.rc 2>/dev/null || echo STILL RUNNING)"; tail -3 /tmp/install.log
while [ ! -f /tmp/snapshot.rc ] && [ $(date +%s) -lt $end ]; do sleep 5; done
echo "$(ts) snapshot rc: $(cat /tmp/snapshot.rc 2>/dev/null || echo running)"
grep -h "placeholder" /tmp/work/results/logs/qwen2.5-7b/snapshot/snapshot.log 2>/dev/null | tail -2
[ "$(cat /tmp/install.rc 2>/dev/null)" = 0 ] && [ "$(cat /tmp/snapshot.rc 2>/dev/null)" = 0 ] || exit 0
if [ ! -f /tmp/smk.log ]; then
  PATH=/tmp/eb/bin:$PATH python -c "import llama_cpp; print('llama.cpp GPU offload:', llama_cpp.llama_supports_gpu_offload())"
  bash /tmp/work/docs/gpu-report-7b/session/go.sh
fi
bash /tmp/work/docs/gpu-report-7b/session/poll.sh $(( end - $(date +%s) ))
