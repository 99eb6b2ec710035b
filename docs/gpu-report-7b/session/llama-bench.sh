#!/bin/bash
# A last call: llama.cpp's own llama-bench, built from the same trimmed sdist as the engine (for sm_90),
# on the F16 checkpoint and the Q4_K_M engine the pipeline made (tg64: the bench's 64 new tokens)
# after scripts/gpu_session.sh start (with the sdist carried): its bundle and work folders
BUNDLE=${BUNDLE:-/tmp/gpu-session/bundle} WORK=${WORK:-/tmp/gpu-session/work}
cd /tmp && mkdir -p lbsrc && tar xzf $BUNDLE/sdist/*.tar.gz -C lbsrc && S=$(ls -d /tmp/lbsrc/*/vendor/llama.cpp)
cmake -S $S -B /tmp/lb -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF > /tmp/lbcfg.log 2>&1 && echo "$(date +%T) configured"
timeout 330 cmake --build /tmp/lb --target llama-bench -j16 > /tmp/lbbuild.log 2>&1; echo "$(date +%T) build rc $?"
B=$(find /tmp/lb -name llama-bench -type f | head -1)
for m in $(find $WORK/results/qwen2.5-7b/checkpoints/gguf-f16 $WORK/results/qwen2.5-7b/engines/llamacpp-q4_k_m -name '*.gguf'); do
  timeout 60 $B -m $m -ngl 99 -fa 1 -p 0 -n 64 -r 5 -o md 2>&1 | grep -E "^\||error"
done
