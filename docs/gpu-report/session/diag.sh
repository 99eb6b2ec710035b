export HF_HUB_OFFLINE=1 PATH=/tmp/eb/bin:$PATH  # on the GPU host, in the run's work folder
G=results/gemma3-270m/engines/llamacpp-f16/model.gguf; ls -la $G
NV=$(python -c "import nvidia,os;print(':'.join(os.path.join(p,d,'lib') for p in nvidia.__path__ for d in os.listdir(p) if os.path.isdir(os.path.join(p,d,'lib'))))" 2>/dev/null)
echo "nvidia libs: $NV" | cut -c1-300
L="import llama_cpp; m=llama_cpp.Llama(model_path='$G', n_gpu_layers=-1, verbose=False); print('loaded')"
t() { echo "== $1"; timeout 60 python -c "$2" 2>&1 | grep -v "^llama\|^load\|^print_info\|^ggml\|^  Device" | tail -3; echo "rc=${PIPESTATUS[0]}"; }
t "llama then torch" "$L; import torch; print('torch ok', torch.cuda.is_available())"
t "torch(cuda init) then llama" "import torch; torch.zeros(1).cuda(); $L"
t "torch(import only) then llama" "import torch; $L; print(m('The sky is', max_tokens=4)['choices'][0]['text'])"
echo "== LD_LIBRARY_PATH=torch nvidia libs: llama then torch"; LD_LIBRARY_PATH=$NV timeout 60 python -c "$L; import torch; print('torch ok', torch.cuda.is_available())" 2>&1 | grep -v "^llama\|^load\|^print_info\|^ggml" | tail -3
ldd /tmp/eb/lib/llama_cpp/lib/libggml-cuda.so | grep -E "cuda|cublas|stdc|gomp" 
grep -E "Finished|Error in" /tmp/smk.log | tail -3
