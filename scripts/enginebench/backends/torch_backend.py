"""PyTorch (transformers) backend: the reference engine, eager or compiled, at a chosen dtype.

It has no checkpoint or engine build of its own: it loads the snapshot's safetensors and casts at
load time, so those stages only write a manifest saying so.

Eager decoding launches every kernel of every step from Python and, on a GPU, is bound by that
launch overhead rather than by memory. With `compile: true` generation uses a static KV cache
(`cache_implementation="static"`, sized once by `max_cache_len`) and transformers compiles the
decode step with `torch.compile` (mode "reduce-overhead": CUDA graphs on a GPU; inductor's default
mode on a CPU). Compilation happens on the first generation of each batch shape: the bench runs it
in its warm-up and records that time apart (`Engine.compiles`).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from ..errors import EngineBenchError
from .base import Backend, Engine


class _TokenStreamer:
    """A transformers streamer that reports each new token's row: generate() hands it the prompt
    first, then one token per row at every step, on the host (so a GPU step has finished)."""

    def __init__(self, on_token):
        self.on_token = on_token
        self.prompt_seen = False

    def put(self, value):
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for row in range(value.shape[0]):
            self.on_token(row)

    def end(self):
        pass


class TorchEngine(Engine):
    def __init__(self, model, device, compiled: str | None = None):
        self.model = model
        self.device = device
        self.compiled = compiled  # the torch.compile mode, None for eager
        self.compiles = compiled is not None

    def generate(self, batch, max_new_tokens, stop_ids, fixed_length, on_token=None):
        import torch

        width = max(len(ids) for ids in batch)
        limit = self.model.generation_config.max_cache_len if self.compiled else None
        if limit is not None and width + max_new_tokens > limit:  # checked here: on a GPU, writing past a
            # static cache is a device-side error that poisons the process's CUDA context
            raise EngineBenchError(f"{width} prompt tokens + {max_new_tokens} new ones do not fit the static cache's "
                                   f"max_cache_len {limit}: raise the variant's max_cache_len")
        pad = stop_ids[0] if stop_ids else 0
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=self.device)
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch],
                                 device=self.device)
        kwargs = dict(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                      eos_token_id=stop_ids or None, top_p=None, top_k=None, temperature=None)
        if fixed_length:
            kwargs["min_new_tokens"] = max_new_tokens
        if on_token is not None:
            kwargs["streamer"] = _TokenStreamer(on_token)
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        rows = []
        for row in out[:, width:].tolist():
            if not fixed_length:
                cut = next((i for i, tok in enumerate(row) if tok in stop_ids), len(row))
                row = row[:cut]
            rows.append(row)
        return rows

    def logits(self, ids):
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0]
        return out.float().cpu().numpy()

    def kv_cache_bytes(self, ids):
        """The cache tensors' bytes after a forward pass over `ids` (a sliding-window layer keeps only
        its window, so this can be less than every layer × every token)."""
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=True, logits_to_keep=1)
        tensors = [t for layer in out.past_key_values.layers for t in (layer.keys, layer.values) if t is not None]
        return {"bytes": sum(t.numel() * t.element_size() for t in tensors),
                "how": f"{type(out.past_key_values).__name__} tensors after a forward pass"}

    def info(self):
        import torch

        params = sum(p.numel() for p in self.model.parameters())
        weight_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        info = {"device": str(self.device), "dtype": str(self.model.dtype).removeprefix("torch."),
                "parameters": params, "weight_bytes": weight_bytes}
        if self.device.type == "cuda":
            info["device_name"] = torch.cuda.get_device_name(self.device)
        if self.compiled:
            config = self.model.generation_config
            info["compiled"] = {"mode": self.compiled, "cache_implementation": config.cache_implementation,
                                "max_cache_len": config.max_cache_len}
        return info

    def peak_device_memory_bytes(self):
        import torch

        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        return None


class TorchBackend(Backend):
    exposes_logits = True
    name = "torch"

    def describe(self, settings):
        kv = f"{settings['dtype']}, static" if settings["compile"] else settings["dtype"]
        return {"quantization": settings["dtype"], "kv_cache": kv}

    def load(self, snapshot, checkpoint, engine, settings, *, threads, trust_remote_code):
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(threads)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = AutoModelForCausalLM.from_pretrained(
            Path(snapshot), dtype=getattr(torch, settings["dtype"]), use_safetensors=True,
            trust_remote_code=trust_remote_code,
        )
        model.to(device).eval()
        mode = None
        if settings["compile"]:
            from transformers import CompileConfig

            mode = "reduce-overhead" if device.type == "cuda" else "default"
            compile_config = CompileConfig(fullgraph=True, mode=mode)
            compile_config._compile_all_devices = True  # transformers compiles on CUDA only unless told
            model.generation_config.cache_implementation = "static"
            model.generation_config.max_cache_len = settings["max_cache_len"]
            model.generation_config.compile_config = compile_config
        if device.type == "cuda":  # peak memory since load: not another job's in this process
            torch.cuda.reset_peak_memory_stats(device)
        return TorchEngine(model, device, compiled=mode)

    def versions(self):
        return {name: importlib.metadata.version(name) for name in ("torch", "transformers")}
