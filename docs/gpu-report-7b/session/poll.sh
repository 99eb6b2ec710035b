#!/bin/bash
# wait up to $1 seconds for the pipeline, printing progress every 30 s
source /tmp/work/docs/gpu-report-7b/session/env.sh
cd /tmp/work
end=$(( $(date +%s) + ${1:-300} ))
while [ ! -f /tmp/smk.rc ] && [ $(date +%s) -lt $end ]; do
  sleep 30
  echo "$(ts) $(grep -c 'Finished job' /tmp/smk.log) jobs finished; $(grep -E 'steps \(' /tmp/smk.log | tail -1); errors: $(grep -c 'Error in rule' /tmp/smk.log); $(grep -E '^rule ' /tmp/smk.log | tail -1) $(grep -E '^    output' /tmp/smk.log | tail -1)"
done
echo "$(ts) snakemake rc: $(cat /tmp/smk.rc 2>/dev/null || echo running)"; df -h /tmp/work | tail -1
for log in $(grep -A3 "Error in rule" /tmp/smk.log | grep "log:" | sed 's/.*log: //; s/ (check.*//'); do echo "== $log"; tail -5 "$log"; done
