"""Where the compiled engine's decode step loses its time (issue 20 asks for >= 66 % of the bound single-stream).

On a random model of Qwen2.5-7B's shape made on the GPU, batch 1, 64 tokens after a 20-token prompt:

  sync    the loop as it ran in session 7: the host reads each token (a sync) before queueing the next step;
  ahead   StaticDecoder.generate as it is now: the next step is queued before the host waits for a token;
  replay  the compiled step replayed 64 times, one sync at the end (the GPU's own time per step);
  kernels torch.profiler over 16 replays: GPU busy time per step, kernels per step, and the kernels with
          the most GPU time (a GEMV far from the bound shows here).

One variant per process (inductor's settings are global): `--mode reduce-overhead|max-autotune`,
`--coordinate-descent` (inductor's tuning of its own Triton kernels), `--blas cublas|cublaslt`.
Run with the bundle's packages first on PYTHONPATH (transformers 5.23):

    PYTHONPATH=/tmp/eb/lib python3 docs/gpu-report-7b/session/profile_step.py --mode reduce-overhead
"""

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, Qwen2Config

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
from enginebench.backends.torch_backend import StaticDecoder  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--mode", default="reduce-overhead")
parser.add_argument("--coordinate-descent", action="store_true")
parser.add_argument("--blas", default=None)
parser.add_argument("--kernels", action="store_true", help="also profile the replays' kernels")
parser.add_argument("--config", default="config/models/qwen2.5-7b-instruct/config.json")
parser.add_argument("--device", default="cuda", help="cpu: a smoke test of this script, nothing more")
args = parser.parse_args()
if args.coordinate_descent:
    torch._inductor.config.coordinate_descent_tuning = True
if args.blas:
    torch.backends.cuda.preferred_blas_library(args.blas)

BOUND_GBPS = 4225  # docs/gpu-report-7b/host/preflight.json, device copy median
config = Qwen2Config(**json.loads(Path(args.config).read_text()))
device = torch.device(args.device)
sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
torch.manual_seed(0)
with device:
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).eval()
weights = sum(p.numel() * p.element_size() for p in model.parameters())
bound_ms = weights / (BOUND_GBPS * 1e9) * 1e3
print(f"== {vars(args)}: weights {weights / 1e9:.2f} GB, {bound_ms:.2f} ms per token at the bound", flush=True)
decoder = StaticDecoder(model, device, 192, args.mode)
prompt, steps = list(range(1000, 1020)), 64
started = time.perf_counter()
reference = decoder.generate([prompt], steps, [151643], True)[0]
print(f"compile + capture + first generation: {time.perf_counter() - started:.1f} s", flush=True)


def per_token_ms(run) -> tuple[float, float]:
    run()
    sync()
    times = []
    for _ in range(5):
        started = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - started) * 1e3 / steps)
    return min(times), sorted(times)[2]


def report(name: str, ms: tuple[float, float]) -> None:
    best, median = ms
    print(f"{name:8s} {best:.3f} ms per token (median {median:.3f}): {1e3 / best:.1f} tokens/s, "
          f"{bound_ms / best:.1%} of the bound", flush=True)


with torch.inference_mode():
    cache = decoder._cache(1)
    suppress = torch.zeros(config.vocab_size, dtype=torch.bool, device=device)
    suppress[151643] = True
    attention = torch.ones(1, 192, dtype=torch.long, device=device)

    def prefill():
        cache.reset()
        logits = model(input_ids=torch.tensor([prompt], device=device), attention_mask=attention, use_cache=True,
                       past_key_values=cache, logits_to_keep=1).logits
        return logits[:, -1].argmax(-1)

    def loop(sync: bool):
        token, out = prefill(), []
        for step in range(steps):
            if sync:
                out.append(token.tolist())
            if step == steps - 1:
                break
            torch.compiler.cudagraph_mark_step_begin()
            position = torch.tensor([[len(prompt) + step]], device=device)
            token = decoder.step(cache, token[:, None], position, attention, suppress).clone()
        return out

    report("sync", per_token_ms(lambda: loop(True)))
    report("ahead", per_token_ms(lambda: decoder.generate([prompt], steps, [151643], True)))
    report("replay", per_token_ms(lambda: loop(False)))
    same = decoder.generate([prompt], steps, [151643], True)[0] == reference
    print(f"ahead's tokens equal the first generation's: {same}", flush=True)

    if args.kernels:
        from torch.profiler import ProfilerActivity, profile

        loop(False)
        sync()
        with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
            loop(False)
            sync()
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        busy = defaultdict(float)
        count = defaultdict(int)
        for event in kernels:
            busy[event.name] += event.device_time
            count[event.name] += 1
        total = sum(busy.values()) / (steps - 1) / 1e3
        print(f"GPU busy {total:.3f} ms per step over {len(kernels) / (steps - 1):.0f} kernels per step "
              f"(the whole loop, prefill included, divided by {steps - 1} steps)")
        for name, us in sorted(busy.items(), key=lambda kv: -kv[1])[:14]:
            print(f"  {us / (steps - 1) / 1e3:7.3f} ms/step {count[name] / (steps - 1):6.1f}x  {name[:110]}")
print(json.dumps(decoder.record()), flush=True)
