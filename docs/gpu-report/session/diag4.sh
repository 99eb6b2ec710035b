export HF_HUB_OFFLINE=1 PATH=/tmp/eb/bin:$PATH  # on the GPU host, in the run's work folder
L="from enginebench.backends.llamacpp_backend import LlamaCppEngine; from pathlib import Path; e=LlamaCppEngine(Path('results/gemma3-270m/engines/llamacpp-q8_0/model.gguf'), json.load(open('/tmp/s.json')), 16); print('loaded')"
t() { echo "== $1"; python -c "import sys, json; sys.path.insert(0,'scripts'); $2" > /tmp/d.log 2>&1; echo "rc=$?"; grep -E "Fatal|loaded|Error" /tmp/d.log | head -2; }
t "numpy first" "import numpy; $L"
t "hashlib first" "import hashlib; $L"
t "numpy + llama_cpp raw" "import numpy, llama_cpp; m=llama_cpp.Llama(model_path='results/gemma3-270m/engines/llamacpp-q8_0/model.gguf', n_gpu_layers=-1, verbose=False); print('loaded')"
t "quality then load, OPENBLAS 1 thread" "import os; os.environ['OPENBLAS_NUM_THREADS']='1'; import enginebench.quality; $L"
