#!/bin/bash
# last call: results without snapshot weights, checkpoints or engines (their manifests and the
# snapshot's config.json kept) to $OUT
source /tmp/work/docs/gpu-report-7b/session/env.sh
bash /tmp/work/docs/gpu-report-7b/session/poll.sh ${1:-0}
cd /tmp/work
cp /tmp/smk.log /tmp/install.log /tmp/snapshot.log results/ 2>/dev/null
cp .snakemake/log/*.snakemake.log results/logs/ 2>/dev/null
{ find results -type f | grep -v -E '/(snapshot|checkpoints|engines|logits-engines|reference)/'
  find results -type f -name manifest.json | grep -E '/(checkpoints|engines|logits-engines)/'
  find results -path '*/snapshot/manifest.json' -o -path '*/snapshot/config.json'; } > /tmp/files.txt
tar czf $OUT/results.tgz -T /tmp/files.txt
ls -la $OUT; wc -l < /tmp/files.txt
