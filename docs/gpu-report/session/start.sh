#!/bin/bash
# call 1: carry bundle/wheels bundle/sdist bundle/bundle.json bundle/model/<main whl>
source docs/gpu-report/session/env.sh
echo "$(ts) start in $PWD"
mkdir -p /tmp/b/model
cp -r bundle/wheels bundle/sdist bundle/bundle.json /tmp/b/
cp bundle/model/*.whl /tmp/b/model/
nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader
nproc; df -h /tmp | tail -1; python3 --version; which nvcc; nvcc --version | tail -2
setsid nohup bash -c 'python3 scripts/airgap.py install --bundle /tmp/b --site /tmp/eb --without-model; echo $? > /tmp/install.rc' > /tmp/install.log 2>&1 < /dev/null &
sleep 25
echo "$(ts) install log:"; tail -5 /tmp/install.log
