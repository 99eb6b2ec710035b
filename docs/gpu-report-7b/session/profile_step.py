"""Next session's first GPU call (not run yet): where the compiled engine's decode step loses the 45 % of
the bandwidth bound that llama.cpp F16 does not (issue 20 asks for >= 66 %). On a random model of
Qwen2.5-7B's shape made on the GPU, at batch 1, 64 tokens after a 20-token prompt:

  A. StaticDecoder.generate as the bench runs it (host sync after every token, for streaming);
  B. the same compiled step replayed 64 times with no host sync until the end (GPU time per step);
  C. B with the step's inputs in buffers marked static (no copy into the graph's inputs per replay);
  D. torch.profiler over 16 steps of B: the ten kernels with the most GPU time, each with the bytes it
     would move at the bound, so a slow GEMV shows.

A - B is the cost of syncing per token; B - C the input copies; D says whether the kernels themselves
stay under the bound. Run with the bundle's packages first on PYTHONPATH (transformers 5.23):

    PYTHONPATH=/tmp/eb/lib python3 docs/gpu-report-7b/session/profile_step.py
"""

import json
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, Qwen2Config

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
from enginebench.backends.torch_backend import StaticDecoder  # noqa: E402

BOUND_GBPS = 4225  # docs/gpu-report-7b/host/preflight.json, device copy median
config = Qwen2Config(**json.loads(Path("config/models/qwen2.5-7b-instruct/config.json").read_text()))
with torch.device("cuda"):
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).eval()
weights = sum(p.numel() * p.element_size() for p in model.parameters())
bound_ms = weights / (BOUND_GBPS * 1e9) * 1e3
print(f"weights {weights / 1e9:.2f} GB: {bound_ms:.2f} ms per token at the bound", flush=True)
decoder = StaticDecoder(model, torch.device("cuda"), 192, "reduce-overhead")
prompt, steps = list(range(1000, 1020)), 64


def per_token_ms(run) -> float:
    run()  # compile / capture / warm
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        run()
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - started) * 1e3 / steps)
    return best


def report(name: str, ms: float) -> None:
    print(f"{name}: {ms:.2f} ms per token, {1e3 / ms:.1f} tokens/s, {bound_ms / ms:.0%} of the bound", flush=True)


report("A generate, sync per token", per_token_ms(lambda: decoder.generate([prompt], steps, [151643], True)))

with torch.inference_mode():
    cache = decoder._cache(1)
    suppress = torch.zeros(config.vocab_size, dtype=torch.bool, device="cuda")
    attention = torch.ones(1, 192, dtype=torch.long, device="cuda")
    token = torch.tensor([[1000]], device="cuda")

    def replay_loop(tok, pos_of):
        cache.reset()
        model(input_ids=torch.tensor([prompt], device="cuda"), attention_mask=attention, use_cache=True,
              past_key_values=cache, logits_to_keep=1)
        for step in range(steps):
            torch.compiler.cudagraph_mark_step_begin()
            tok = decoder.step(cache, tok, pos_of(step), attention, suppress)[:, None].clone()
        return tok

    report("B replays, one sync at the end",
           per_token_ms(lambda: replay_loop(token, lambda s: torch.tensor([[20 + s]], device="cuda"))))

    static_pos = torch.zeros(1, 1, dtype=torch.long, device="cuda")
    for buffer in (static_pos, attention, suppress):
        torch._dynamo.mark_static_address(buffer)

    def static_positions(step):
        static_pos.fill_(20 + step)
        return static_pos

    report("C replays, static input buffers", per_token_ms(lambda: replay_loop(token, static_positions)))

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        replay_loop(token, lambda s: torch.tensor([[20 + s]], device="cuda"))
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=10))
print(json.dumps(decoder.record()))
