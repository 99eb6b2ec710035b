#!/bin/bash
# Session 8, call 2: once the pipeline is done, the decode step's profile (profile_step.py), one process per
# variant; then the results to $OUT (collect.sh).
source /tmp/work/docs/gpu-report-7b/session/env.sh
bash /tmp/work/docs/gpu-report-7b/session/poll.sh ${1:-120}
cd /tmp/work
for variant in "--kernels" "--coordinate-descent" "--blas cublaslt" "--mode max-autotune"; do
  PYTHONPATH=/tmp/eb/lib timeout ${2:-150} python3 docs/gpu-report-7b/session/profile_step.py $variant 2>&1 \
    | grep -v -i -E "warn|^ *$" | tail -24 | tee -a results/profile_step.txt
  echo "$(ts) variant done: $variant" | tee -a results/profile_step.txt
done
bash /tmp/work/docs/gpu-report-7b/session/collect.sh 0
