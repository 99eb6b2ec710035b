#!/bin/bash
source docs/gpu-report/session/env.sh
end=$(( $(date +%s) + ${1:-120} ))
while [ ! -f /tmp/smk2.rc ] && [ $(date +%s) -lt $end ]; do
  sleep 20
  echo "$(ts) run1 rc=$(cat /tmp/smk.rc 2>/dev/null) run2: $(grep -E 'steps \(' /tmp/smk2.log | tail -1); errors: $(grep -c 'Error in rule' /tmp/smk2.log); last: $(grep -E '^(rule|localrule) ' /tmp/smk2.log | tail -1) $(grep -A4 -E '^(rule|localrule) ' /tmp/smk2.log | grep wildcards | tail -1)"
done
echo "$(ts) run2 rc: $(cat /tmp/smk2.rc 2>/dev/null || echo running)"
grep -A3 "Error in rule" /tmp/smk2.log | grep "log:" | head
