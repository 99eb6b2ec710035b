#!/bin/bash
# when the first run ends, run the pipeline again (retries what failed) in the background
source docs/gpu-report/session/env.sh
setsid nohup bash -c 'while [ ! -f /tmp/smk.rc ]; do sleep 2; done; python3 scripts/airgap.py run --bundle /tmp/b --site /tmp/eb -- --cores 16 --resources gpu=1 --keep-going --configfile config/gpu.yaml; echo $? > /tmp/smk2.rc' > /tmp/smk2.log 2>&1 < /dev/null &
echo "$(ts) rerun queued"
