"""The "predicted by ModelOpt fake-quant" stand-in of a quantized TensorRT-LLM engine (runs on CPU).

The quantization TensorRT-LLM 1.2.1's examples/quantization/quantize.py applies through
tensorrt_llm/quantization/quantize_by_modelopt.py: the format's ModelOpt config (KV-cache quantizers
added for `kv_cache_dtype`, the AWQ block size set) and `mtq.quantize` with a calibration loop over
`calib_size` samples of at most `calib_max_seq_length` tokens. The fake-quantized model (weights,
activations and KV cache quantized as configured, computed in floating point) goes through the
quality stage like an engine. Its calibration text is offline (`calibration.text`); the real
checkpoint is made by quantize.py itself, in the container, from `calibration.dataset`.

Runs with the host's ModelOpt (0.47, list-style `quant_cfg`) and with the container's (0.37, dict-style),
since the whole workflow may run inside the container.
"""

from __future__ import annotations

import copy
import random
import time
from pathlib import Path

from .errors import EngineBenchError
from .progress import progress

# qformat -> ModelOpt config name (quantize_by_modelopt.py's mapping)
QFORMAT_CONFIGS = {"fp8": "FP8_DEFAULT_CFG", "int8_sq": "INT8_SMOOTHQUANT_CFG", "int4_awq": "INT4_AWQ_CFG",
                   "w4a8_awq": "W4A8_AWQ_BETA_CFG"}
AWQ_MAX_CALIB_SIZE = 32  # quantize.py caps calib_size for AWQ formats (its search is expensive)


def calibration_size(qformat: str, size: int) -> int:
    """Calibration samples quantize.py takes for a format: at most AWQ_MAX_CALIB_SIZE for the AWQ ones."""
    return min(size, AWQ_MAX_CALIB_SIZE) if "awq" in qformat else size


# The KV cache as quantize.py quantizes it (tensorrt_llm/quantization/quantize_by_modelopt.py@585c7565, its
# kv_cache_dtype branch): fp8 with ModelOpt's own FP8_KV_CFG (the attention's K and V BMM inputs, after
# RoPE); int8 with its KV_CACHE_CFG, the output quantizers of the K and V projections (K before RoPE).
INT8_KV_PATTERNS = ("*.query_key_value.output_quantizer", "*.Wqkv.output_quantizer", "*.W_pack.output_quantizer",
                    "*.c_attn.output_quantizer", "*.k_proj.output_quantizer", "*.v_proj.output_quantizer",
                    "*.k.output_quantizer", "*.v.output_quantizer")


def kv_entries(kv_cache_dtype: str) -> list[tuple[str, dict]]:
    """(quantizer pattern, cfg) pairs quantize.py adds for `kv_cache_dtype`."""
    import modelopt.torch.quantization as mtq

    if kv_cache_dtype == "none":
        return []
    if kv_cache_dtype == "fp8":
        cfg = copy.deepcopy(mtq.FP8_KV_CFG["quant_cfg"])
        return list(cfg.items()) if isinstance(cfg, dict) else [(e["quantizer_name"], e["cfg"]) for e in cfg]
    return [(pattern, {"num_bits": 8, "axis": None, "enable": True}) for pattern in INT8_KV_PATTERNS]


def quant_config(qformat: str, kv_cache_dtype: str, awq_block_size: int) -> dict:
    """The ModelOpt quantization config for a format and KV-cache dtype."""
    import modelopt.torch.quantization as mtq

    config = copy.deepcopy(getattr(mtq, QFORMAT_CONFIGS[qformat]))
    kv = kv_entries(kv_cache_dtype)
    if isinstance(config["quant_cfg"], dict):  # ModelOpt <= 0.37 (the container's): {pattern: cfg}
        weight = config["quant_cfg"].get("*weight_quantizer")
        config["quant_cfg"].update(kv)
    else:  # later ModelOpt: [{"quantizer_name": pattern, "cfg": cfg}, ...]
        weight = next((e["cfg"] for e in config["quant_cfg"] if e.get("quantizer_name") == "*weight_quantizer"),
                      None)
        config["quant_cfg"].extend({"quantizer_name": pattern, "cfg": cfg} for pattern, cfg in kv)
    if "awq" in qformat:
        cfgs = weight if isinstance(weight, list) else [weight]
        cfgs[0]["block_sizes"][-1] = awq_block_size  # the 4-bit part; W4A8's second is FP8
    return config


def calibration_batches(tokenizer, text: str, size: int, max_seq_length: int, seed: int) -> list[list[int]]:
    """Up to `size` samples of `max_seq_length` tokens cut from the text, in a seeded random order."""
    ids = tokenizer(text, add_special_tokens=False).input_ids
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    body = max_seq_length - len(bos)
    samples = [bos + ids[i:i + body] for i in range(0, len(ids) - body + 1, body)]
    if not samples:
        raise EngineBenchError(f"calibration text has {len(ids)} tokens, fewer than one sample of {max_seq_length}")
    random.Random(seed).shuffle(samples)
    return samples[:size]


def fake_quantize(snapshot: Path, settings: dict, *, trust_remote_code: bool, device: str = "cpu"):
    """(model, record): the snapshot's model quantized by ModelOpt as configured and calibrated."""
    import modelopt.torch.quantization as mtq
    import torch
    from transformers import AutoModelForCausalLM

    from .prompts import load_tokenizer
    from .quality import eval_text

    calib = settings["calibration"]
    torch.manual_seed(calib["seed"])
    tokenizer = load_tokenizer(snapshot, chat_template=False, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(snapshot, dtype=torch.float32, use_safetensors=True,
                                                 trust_remote_code=trust_remote_code).to(device).eval()
    text, source = eval_text(calib["text"], key="calibration.text")
    size = calibration_size(settings["qformat"], calib["size"])
    samples = calibration_batches(tokenizer, text, size, calib["max_seq_length"], calib["seed"])

    def forward_loop(m):
        with torch.no_grad():
            for start in range(0, len(samples), calib["batch_size"]):
                if start % 8 == 0:
                    progress(f"calibration sample {start + 1}/{len(samples)}")
                batch = torch.tensor(samples[start:start + calib["batch_size"]], device=device)
                try:  # no quantizer sees the logits (every format's config leaves *lm_head* off): the last
                    m(batch, logits_to_keep=1)  # position's suffice, a third of Gemma 3's calibration time
                except TypeError:  # a model whose forward does not take it (trust_remote_code)
                    m(batch)

    config = quant_config(settings["qformat"], settings["kv_cache_dtype"], settings["awq_block_size"])
    started = time.perf_counter()
    model = mtq.quantize(model, config, forward_loop=forward_loop)
    record = {"calibration_s": time.perf_counter() - started, "calibration_text": source,
              "calibration_samples": len(samples), "calibration_tokens": sum(map(len, samples)),
              "modelopt_config": QFORMAT_CONFIGS[settings["qformat"]]}
    return model, record
