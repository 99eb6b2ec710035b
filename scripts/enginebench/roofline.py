"""Decode roofline: the memory-bandwidth upper bound of single-stream decoding, and how close an
engine gets. Each generated token reads every weight once plus the KV cache of its context, so

    bound (tokens/s) = bandwidth (bytes/s) / (weight bytes + KV bytes per context token × context)
"""

from __future__ import annotations

from .backends.base import parallel_gpus

# bytes per KV-cache element by cache type (llama.cpp block formats: block bytes / 32 elements)
KV_ELEMENT_BYTES = {"float32": 4.0, "f32": 4.0, "float16": 2.0, "bfloat16": 2.0, "f16": 2.0, "bf16": 2.0,
                    "q8_0": 34 / 32, "q5_1": 24 / 32, "q5_0": 22 / 32, "q4_1": 20 / 32, "q4_0": 18 / 32,
                    "iq4_nl": 18 / 32, "fp8": 1.0, "int8": 1.0}


def kv_bytes_per_token(model_config: dict, kv_cache: str) -> float | None:
    """K and V of one token over every layer, from the snapshot's config.json; None if unknown."""
    config = model_config.get("text_config", model_config)
    try:
        layers = config["num_hidden_layers"]
        heads = config.get("num_key_value_heads") or config["num_attention_heads"]
        head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    except KeyError:
        return None
    element = KV_ELEMENT_BYTES.get(kv_cache.split(",")[0].strip())  # "bfloat16, static": the element type
    return None if element is None else 2 * layers * heads * head_dim * element


def decode_context(bench: dict) -> float:
    """KV-cache positions one single-stream decode step reads in a bench: the mean context (prompt
    plus half the generated tokens), or the whole cache for a static cache (its attention reads
    every allocated position, masked: seen on the H200, where the compiled engine had no bound)."""
    compiled = bench["engine_info"].get("compiled") or {}
    if compiled.get("cache_implementation") == "static":
        return float(compiled["max_cache_len"])
    prompts = bench["prompt_tokens"]
    return sum(prompts) / len(prompts) + bench["spec"]["bench"]["max_new_tokens"] / 2


def bound_bandwidth(measured: dict) -> float:
    """GB/s a bound divides by: the best of the preflight's repetitions (a bound that an engine beats is
    no bound; the slower repetitions measured interference, not the memory)."""
    return measured["max"]


def decode_bound(bandwidth_gb_s: float, weight_bytes: float, kv_per_token: float, context: float) -> dict:
    per_token = weight_bytes + kv_per_token * context
    return {"bytes_per_token": per_token, "tokens_per_s": bandwidth_gb_s * 1e9 / per_token}


def stream_gpus(settings: dict, on_gpu: bool) -> int:
    """GPUs whose memory one decode stream reads at once: every GPU of a tensor or row split (each reads
    its share of every layer's weights at the same time), one for a layer split (its GPUs take their
    layers in turn) or an engine on one device; the host's memory is one memory however many ranks read it."""
    gpus = parallel_gpus(settings)
    return gpus if on_gpu and gpus > 1 and settings["parallel"]["mode"] in ("tensor", "row") else 1
