#!/bin/bash
# wait up to $1 seconds for the pipeline, printing progress every 30 s
source docs/gpu-report/session/env.sh
end=$(( $(date +%s) + ${1:-300} ))
while [ ! -f /tmp/smk.rc ] && [ $(date +%s) -lt $end ]; do
  sleep 30
  echo "$(ts) $(grep -c 'Finished job' /tmp/smk.log) jobs finished; $(grep -E 'steps \(' /tmp/smk.log | tail -1); errors: $(grep -c 'Error in rule' /tmp/smk.log)"
  grep -h -E "CUDA0|offloaded|Fatal Python|Segmentation|error:" results/logs/gemma3-270m/bench/llamacpp-f16.log 2>/dev/null | head -4
  ls results/gemma3-270m/bench/ 2>/dev/null | tr '\n' ' '; echo
done
echo "$(ts) snakemake rc: $(cat /tmp/smk.rc 2>/dev/null || echo running)"
grep -A3 "Error in rule" /tmp/smk.log | grep "log:" | head -20
