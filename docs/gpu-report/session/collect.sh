#!/bin/bash
# last call: results without snapshot/checkpoints/engines (their manifests kept; the snapshot's
# config.json too, which the report's roofline reads) to $OUT
source docs/gpu-report/session/env.sh
cp /tmp/smk.log /tmp/install.log results/ 2>/dev/null
{ find results -type f | grep -v -E '/(snapshot|checkpoints|engines|logits-engines|reference)/'
  find results -type f -name manifest.json | grep -E '/(checkpoints|engines|logits-engines)/'
  find results -path '*/snapshot/manifest.json' -o -path '*/snapshot/config.json'; } > /tmp/files.txt
tar czf $OUT/results.tgz -T /tmp/files.txt
ls -la $OUT; wc -l < /tmp/files.txt
