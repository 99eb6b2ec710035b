#!/bin/bash
# the whole pipeline, in the background, in /tmp/work (later calls' tree copies do not touch it)
source /tmp/work/docs/gpu-report-7b/session/env.sh
cd /tmp/work
rm -f /tmp/smk.rc
setsid nohup bash -c "python3 scripts/airgap.py run --bundle /tmp/b --site /tmp/eb --without-model -- --cores 16 --resources gpu=1 --keep-going --configfile $CONFIG ${*}; echo \$? > /tmp/smk.rc" > /tmp/smk.log 2>&1 < /dev/null &
echo "$(ts) pipeline started"
