"""What the busiest GPU (or rank) of an engine split over several holds, from its bench record: weights and
KV cache per GPU, for the report's scaling table (a TensorRT-LLM split's rank engine files, a torch split's
ranks, llama.cpp's per-device buffers from its load log; an engine on one device holds them all)."""

from __future__ import annotations

from .backends.base import parallel_gpus


def gpu_share(buffers: dict[str, int], gpus: int) -> float | None:
    """The share of llama.cpp's buffers (its load log, by buffer name) the busiest GPU holds: its own buffer,
    plus a row split's buffer (CUDA_Split: the split tensors of every GPU) ÷ the GPUs (tensor_split is even);
    None where nothing is on a GPU."""
    on_gpu = {name: b for name, b in buffers.items() if not name.startswith("CPU")}
    if not on_gpu:
        return None
    split = sum(b for name, b in on_gpu.items() if name.endswith("_Split"))
    own = max((b for name, b in on_gpu.items() if not name.endswith("_Split")), default=0)
    return (own + split / gpus) / sum(buffers.values())


def weights_per_gpu(bench: dict) -> tuple[int | None, str]:
    """(bytes, how): the weights the busiest GPU (or rank) of the engine holds."""
    info, gpus = bench["engine_info"], parallel_gpus(bench["spec"]["settings"])
    if engines := info.get("rank_engine_bytes"):  # TensorRT-LLM: close to the weights a rank's GPU holds
        return max(engines), "the largest rank's engine file"
    if (split := info.get("tensor_parallel")) and "largest_rank_weight_bytes" in split:
        return split["largest_rank_weight_bytes"], "the largest rank's shard"
    if split and "parameters_on_rank_0" in split:  # a torch split recorded before the largest rank's bytes were
        return round(info["weight_bytes"] * split["parameters_on_rank_0"] / split["parameters"]), "rank 0's shard"
    if gpus > 1 and (share := gpu_share(info.get("model_buffer_bytes", {}), gpus)) is not None:
        return round(info["weight_bytes"] * share), "llama.cpp's model buffers"
    if not info.get("weight_bytes"):
        return None, "not reported"
    return info["weight_bytes"], "one device holds them all"


def kv_per_gpu(bench: dict) -> tuple[int | None, str]:
    """(bytes per 1k tokens of context, how): the KV cache the busiest GPU (or rank) holds at the bench's
    deepest context depth, or (None, why)."""
    entries = [e for e in bench["metrics"].get("depths") or [] if e["status"] == "ok" and e.get("kv_cache")]
    if not entries:
        return None, "not measured (no context depth of bench.context_depths ran with a KV figure)"
    entry, gpus = entries[-1], parallel_gpus(bench["spec"]["settings"])
    kv, per_1k = entry["kv_cache"], 1000 / entry["context_tokens"]
    if "largest_rank_bytes" in kv:
        return round(kv["largest_rank_bytes"] * per_1k), "the largest rank's cache"
    if "tensor_parallel" in bench["engine_info"]:  # a torch split recorded before its ranks' caches were summed
        return round(kv["bytes"] * per_1k), "rank 0's cache"
    if gpus > 1 and (share := gpu_share(bench["engine_info"].get("kv_buffer_bytes", {}), gpus)) is not None:
        return round(kv["bytes"] * share * per_1k), "llama.cpp's KV buffers"
    return round(kv["bytes"] * per_1k), "one device holds it all"
