export HF_HUB_OFFLINE=1 PATH=/tmp/eb/bin:$PATH  # on the GPU host, in the run's work folder
L="from enginebench.backends.llamacpp_backend import LlamaCppEngine; from pathlib import Path; e=LlamaCppEngine(Path('results/gemma3-270m/engines/llamacpp-q8_0/model.gguf'), json.load(open('/tmp/s.json')), 16); print('loaded')"
t() { echo "== $1"; python -c "import sys, json; sys.path.insert(0,'scripts'); $2" > /tmp/d.log 2>&1; echo "rc=$?"; grep -E "Fatal|loaded|Error" /tmp/d.log | head -2; }
t "read reference json, then load" "r=json.load(open('results/gemma3-270m/reference/logprobs.json')); $L"
t "import enginebench.quality, then load" "import enginebench.quality; $L"
t "runtime_main imports (cli, stages), then load" "import enginebench.cli, enginebench.stages; $L"
t "read samples json then load" "r=json.load(open('results/gemma3-270m/samples/llamacpp-q8_0.json')); $L"
ls -la results/gemma3-270m/reference/logprobs.json
