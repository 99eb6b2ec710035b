export HF_HUB_OFFLINE=1 PATH=/tmp/eb/bin:$PATH  # on the GPU host, in the run's work folder
CMD=$(grep -o "python /work/main/scripts/quality.py .*llamacpp-q8_0.json" /tmp/smk2.log | head -1 | sed 's/ > results.*//')
echo "${CMD:0:120}"
t() { echo "== $1"; ( eval "$2" ) > /tmp/d.log 2>&1; echo "rc=$?"; grep -v "^llama_model_loader\|^print_info\|^load\|frozen" /tmp/d.log | grep -E "Fatal|File|error|Error|quality" | head -4; }
t "as snakemake ran it" "$CMD --out /tmp/q1.json"
t "stack unlimited" "ulimit -s unlimited; $CMD --out /tmp/q2.json"
t "threads 1" "${CMD/--threads 16/--threads 1} --out /tmp/q3.json"
echo '{"checkpoint_type":"f16","flash_attn":true,"kv_cache":"f16","n_ctx":4096,"n_gpu_layers":null,"offload_kqv":true,"quantization":"Q8_0"}' > /tmp/s.json
t "bench-like load in python" "python -c \"import sys; sys.path.insert(0,'scripts'); import json; from enginebench.backends.llamacpp_backend import LlamaCppEngine; from pathlib import Path; e=LlamaCppEngine(Path('results/gemma3-270m/engines/llamacpp-q8_0/model.gguf'), json.loads(open('/tmp/s.json').read()), 16); print('loaded')\""
