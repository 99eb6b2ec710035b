#!/bin/bash
# calls 2-5: carry bundle/model/<part N whl>
source docs/gpu-report/session/env.sh
cp bundle/model/*.whl /tmp/b/model/
echo "$(ts) model files: $(ls /tmp/b/model | wc -l)"; ls -la /tmp/b/model | tail -n +2
echo "install rc: $(cat /tmp/install.rc 2>/dev/null || echo running)"; tail -3 /tmp/install.log
