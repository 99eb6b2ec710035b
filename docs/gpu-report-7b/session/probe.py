"""Before the pipeline: the compiled engine's decode loop (enginebench.backends.torch_backend.StaticDecoder)
on a random model of Qwen2.5-7B's shape made on the GPU: single-stream tokens/s, and whether CUDA graphs
were captured. Run with the bundle's packages first on PYTHONPATH (transformers 5.23)."""

import json
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, Qwen2Config

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
from enginebench.backends.torch_backend import StaticDecoder  # noqa: E402

config = Qwen2Config(**json.loads(Path("config/models/qwen2.5-7b-instruct/config.json").read_text()))
torch.manual_seed(0)
with torch.device("cuda"):
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).eval()
weights = sum(p.numel() * p.element_size() for p in model.parameters())
decoder = StaticDecoder(model, torch.device("cuda"), 192, "reduce-overhead")
prompt = list(range(1000, 1020))
for size in (1, 16):
    for i in range(3):
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = decoder.generate([prompt] * size, 64, [151643], fixed_length=True)
        seconds = time.perf_counter() - start
        print(f"batch {size} run {i}: {size * 64 / seconds:.1f} tokens/s ({seconds:.2f} s)", flush=True)
print(f"weights {weights / 1e9:.2f} GB; at 4,234 GB/s the batch-1 bound is {4234e9 / weights:.0f} tokens/s")
print(json.dumps(decoder.record()))
