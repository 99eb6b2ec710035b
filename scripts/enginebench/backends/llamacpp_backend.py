"""llama.cpp backend through llama-cpp-python: GGUF checkpoints, quantized engines, KV-cache types.

- checkpoint: the HF snapshot converted to a GGUF at F16/BF16 by llama.cpp's own
  convert_hf_to_gguf.py (from the llama-cpp-python sdist, fetched by `make setup` into vendor/);
  one checkpoint feeds every quantized engine of a model.
- engine: `llama_model_quantize` to the configured file type (none for the checkpoint's own type).
- runtime: the low-level API, so that several sequences decode together in one batch (the
  high-level `Llama` class runs one sequence). The KV-cache type (`type_k`/`type_v`) is the analogue
  of TensorRT-LLM's `--kv_cache_dtype`.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import re
import sys
import time
from pathlib import Path

from ..errors import EngineBenchError, StageFailure, StageUnavailable
from ..gguf_tokenizer import TOKENIZER_GGUF, replace_tokenizer
from ..tools import run_tool
from .base import Backend, Engine

REPO = Path(__file__).resolve().parents[3]
CONVERTER = Path(os.environ.get("ENGINEBENCH_LLAMA_CONVERTER", REPO / "vendor/llama.cpp/convert_hf_to_gguf.py"))
GGUF_NAME = "model.gguf"
MAX_SEQUENCES = 64  # sequences one context can decode together (the largest bench batch size; llama.cpp allows 256)

# bits per weight of each file type, as llama.cpp's quantize lists them (for the disk estimate)
FILE_TYPE_BITS = {"F32": 32, "F16": 16, "BF16": 16, "Q8_0": 8.5, "Q6_K": 6.56, "Q5_K_M": 5.67, "Q5_K_S": 5.52,
                  "Q5_0": 5.5, "Q4_K_M": 4.89, "Q4_K_S": 4.58, "Q4_0": 4.5, "Q3_K_M": 3.91, "Q3_K_S": 3.5,
                  "Q2_K": 3.35, "IQ4_NL": 4.5}

# config name (config/schema.yaml) -> ggml type name
KV_TYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "q5_1": "Q5_1", "q5_0": "Q5_0",
            "q4_1": "Q4_1", "q4_0": "Q4_0", "iq4_nl": "IQ4_NL"}


# enum ggml_log_level (ggml/include/ggml.h of llama-cpp-python 0.3.36's vendored llama.cpp):
# NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the previous message)
GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_CONT = 3, 5
_LOG: list[str] = []  # llama.cpp's log lines of this process (where layers and buffers went)
_LOG_CALLBACK = None  # kept referenced: llama.cpp calls it from C


def _capture_log(L) -> None:
    """Route llama.cpp's log into _LOG (it reports where it put layers and buffers), passing warnings
    and errors on to stderr, which the job's log keeps. Installed once per process."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return

    last = [0]

    @L.llama_log_callback
    def callback(level, text, user_data):
        line = text.decode("utf-8", "replace")
        _LOG.append(line)
        level = last[0] if level == GGML_LOG_LEVEL_CONT else level
        last[0] = level
        if level >= GGML_LOG_LEVEL_WARN:
            sys.stderr.write(line)

    _LOG_CALLBACK = callback
    L.llama_log_set(callback, ctypes.c_void_p(0))


_OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")
_BUFFER = re.compile(r"(\S+) (model|KV) buffer size = +([\d.]+) MiB")
# One line per KV cache (Gemma 3 and other sliding-window models get two: full and SWA layers), e.g.
# "llama_kv_cache: size =   36.00 MiB (  4096 cells,   3 layers,  1/1 seqs), K (f16):   18.00 MiB, ..."
_KV_CACHE = re.compile(r"size = +([\d.]+) MiB \( *(\d+) cells, +(\d+) layers")


def placement(log: list[str]) -> dict:
    """Where llama.cpp put the model, read back from its load log: layers offloaded (its count
    includes the output layer) and the model and KV-cache buffers per backend buffer type
    ("CUDA0", "CPU", "CPU_Mapped"...). A build without GPU offload logs no offload line."""
    text = "".join(log)
    offload = _OFFLOADED.findall(text)
    buffers = {"model": {}, "KV": {}}
    for name, kind, mib in _BUFFER.findall(text):
        buffers[kind][name] = buffers[kind].get(name, 0) + round(float(mib) * 2**20)
    on_gpu, layers = (int(offload[-1][0]), int(offload[-1][1])) if offload else (0, None)
    gpu_kv = any(not name.startswith("CPU") for name in buffers["KV"])
    if layers is not None and on_gpu >= layers:
        device = "cuda" if gpu_kv else "cuda (KV cache on the host)"
    elif on_gpu:
        device = f"cpu+cuda ({on_gpu}/{layers} layers on the GPU)"
    else:
        device = "cpu"
    kv_caches = [{"bytes": round(float(mib) * 2**20), "cells": int(cells), "layers": int(n)}
                 for mib, cells, n in _KV_CACHE.findall(text)]
    return {"device": device, "layers_on_gpu": on_gpu, "layers": layers,
            "model_buffer_bytes": buffers["model"], "kv_buffer_bytes": buffers["KV"], "kv_caches": kv_caches}


def kv_bytes_for(kv_caches: list[dict], tokens: int) -> int:
    """Bytes of llama.cpp's KV caches that a context of `tokens` occupies: each cache's bytes per cell
    times the cells the context fills (a sliding-window cache holds at most its own cells)."""
    return round(sum(c["bytes"] / c["cells"] * min(tokens, c["cells"]) for c in kv_caches))


def split_across_gpus(L, model_params, parallel: dict | None):
    """llama_model_params for `parallel` (schema: gpus, mode layer|row): split_mode, an even tensor_split
    over the first `gpus` devices, main_gpu 0. Returns the tensor_split array (the params hold a pointer
    to it), or None for one device."""
    if not parallel or parallel["gpus"] == 1:
        return None
    split = (ctypes.c_float * L.llama_max_devices())(*[1.0] * parallel["gpus"])
    model_params.split_mode = {"layer": L.LLAMA_SPLIT_MODE_LAYER, "row": L.LLAMA_SPLIT_MODE_ROW}[parallel["mode"]]
    model_params.tensor_split = ctypes.cast(split, ctypes.POINTER(ctypes.c_float))
    model_params.main_gpu = 0
    return split


def server_split_flags(parallel: dict | None) -> list[str]:
    """llama-server's flags for the same split as split_across_gpus."""
    if not parallel or parallel["gpus"] == 1:
        return []
    return ["--split-mode", parallel["mode"], "--tensor-split", ",".join(["1"] * parallel["gpus"]), "--main-gpu", "0"]


def gpu_layers(settings: dict, supports_offload: bool) -> int:
    """n_gpu_layers for llama_model_params: the variant's, else every layer where the build offloads."""
    if settings["n_gpu_layers"] is not None:
        return settings["n_gpu_layers"]
    return -1 if supports_offload else 0


def _isolate_gpu_build(numpy_first: bool) -> None:
    """A GPU build of llama.cpp shares a process badly with other CUDA-era libraries. On the H200
    (CUDA 13.0, torch 2.11+cu130, numpy 2.5): a model load segfaulted after `import torch`, and after
    `import numpy` when numpy came before llama_cpp's library; importing torch after a load aborted
    with `free(): invalid pointer` (docs/gpu-report/README.md). Nothing in a llama.cpp job needs
    torch (the tokenizer runs without it), so `import torch` is made to fail in this process, which
    transformers takes as "PyTorch not installed"; the stages import numpy only after the engine."""
    if sys.modules.get("torch") is not None:
        raise EngineBenchError("a GPU build of llama.cpp cannot load in a process that has imported torch "
                               "(their CUDA libraries clash): run it in a process of its own")
    if numpy_first:
        raise EngineBenchError("a GPU build of llama.cpp must be imported before numpy (a model load after "
                               "numpy segfaulted): import the engine before anything that imports numpy")
    sys.modules["torch"] = None


class LlamaCppEngine(Engine):
    def __init__(self, path: Path, settings: dict, threads: int):
        import logging

        # What llama.cpp logs before _capture_log takes over (its backends' start-up, at import) goes
        # through llama-cpp-python's own logger: warnings and errors only.
        logging.getLogger("llama-cpp-python").setLevel(logging.WARNING)
        numpy_first = "numpy" in sys.modules and "llama_cpp" not in sys.modules
        import llama_cpp as L

        if L.llama_supports_gpu_offload():
            _isolate_gpu_build(numpy_first)
        _capture_log(L)
        self.L = L
        L.llama_backend_init()
        self.path = path
        model_params = L.llama_model_default_params()
        model_params.n_gpu_layers = gpu_layers(settings, L.llama_supports_gpu_offload())
        self._tensor_split = split_across_gpus(L, model_params, settings.get("parallel"))  # kept alive: a pointer
        log_start = len(_LOG)
        self.model = L.llama_model_load_from_file(str(path).encode(), model_params)
        if not self.model:
            raise EngineBenchError(f"llama.cpp could not load {path}")
        self.n_gpu_layers = model_params.n_gpu_layers
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        params = L.llama_context_default_params()
        params.n_ctx = settings["n_ctx"]
        params.n_batch = settings["n_ctx"]
        params.n_seq_max = MAX_SEQUENCES
        params.kv_unified = True  # sequences share the n_ctx cells, whatever their number
        params.n_threads = params.n_threads_batch = threads
        kv = getattr(L, f"GGML_TYPE_{KV_TYPES[settings['kv_cache']]}")
        params.type_k = params.type_v = kv
        params.flash_attn_type = (L.LLAMA_FLASH_ATTN_TYPE_ENABLED if settings["flash_attn"]
                                  else L.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        params.offload_kqv = settings["offload_kqv"]
        params.no_perf = False
        self.ctx = L.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise EngineBenchError(f"llama.cpp could not create a context for {path} with {settings}")
        self.placement = placement(_LOG[log_start:])
        self.batch = L.llama_batch_init(settings["n_ctx"], 0, MAX_SEQUENCES)
        self.settings = settings
        self.last_counters: dict | None = None

    def tokenize(self, text, add_special):
        raw = text.encode()
        buf = (self.L.llama_token * (len(raw) + 16))()
        n = self.L.llama_tokenize(self.vocab, raw, len(raw), buf, len(buf), add_special, True)
        if n < 0:
            raise EngineBenchError(f"llama.cpp tokenization of {len(raw)} bytes needs {-n} tokens")
        return list(buf[:n])

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """Decode (token, position, sequence, wants_logits) entries as one batch."""
        b = self.batch
        for i, (tok, pos, seq, logits) in enumerate(entries):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = tok, pos, 1, logits
            b.seq_id[i][0] = seq
        b.n_tokens = len(entries)
        rc = self.L.llama_decode(self.ctx, b)
        if rc != 0:
            raise EngineBenchError(f"llama_decode failed (rc={rc}): batch of {len(entries)} tokens, n_ctx "
                                   f"{self.settings['n_ctx']}")

    def _argmax(self, index: int, banned: list[int]):
        import numpy as np

        logits = np.ctypeslib.as_array(self.L.llama_get_logits_ith(self.ctx, index), shape=(self.n_vocab,))
        best = int(np.argmax(logits))  # on llama.cpp's own buffer: no copy of the vocabulary per token
        if best in banned:
            logits = logits.copy()
            logits[banned] = -np.inf
            best = int(np.argmax(logits))
        return best

    def generate(self, batch, max_new_tokens, stop_ids, fixed_length, on_token=None):
        L = self.L
        if len(batch) > MAX_SEQUENCES:
            raise EngineBenchError(f"batch of {len(batch)} exceeds the engine's {MAX_SEQUENCES} sequences")
        L.llama_memory_clear(L.llama_get_memory(self.ctx), True)
        L.llama_perf_context_reset(self.ctx)
        entries, rows = [], []
        for seq, ids in enumerate(batch):
            entries += [(tok, pos, seq, pos == len(ids) - 1) for pos, tok in enumerate(ids)]
            rows.append(len(entries) - 1)
        self._decode(entries)
        banned = list(stop_ids) if fixed_length else []
        outputs = [[] for _ in batch]
        active = list(range(len(batch)))
        while active:
            step, still = [], []
            for seq, row in zip(active, rows, strict=True):
                tok = self._argmax(row, banned)
                if not fixed_length and tok in stop_ids:
                    continue
                outputs[seq].append(tok)
                if on_token is not None:
                    on_token(seq)
                if len(outputs[seq]) < max_new_tokens:
                    still.append(seq)
                    step.append((tok, len(batch[seq]) + len(outputs[seq]) - 1, seq, True))
            if not step:
                break
            self._decode(step)
            active, rows = still, list(range(len(step)))
        perf = L.llama_perf_context(self.ctx)
        # llama.cpp counts a decode call of one token as "eval" and anything larger as "prompt eval",
        # so its decode figure is meaningful for single-stream runs only.
        self.last_counters = {
            "engine": {"source": "llama_perf_context", "prefill_s": perf.t_p_eval_ms / 1000,
                       "prefill_tokens": perf.n_p_eval, "decode_s": perf.t_eval_ms / 1000,
                       "decode_tokens": perf.n_eval},
        }
        return outputs

    def logits(self, ids):
        import numpy as np

        if len(ids) > self.settings["n_ctx"]:
            raise EngineBenchError(f"{len(ids)} tokens do not fit the engine's n_ctx {self.settings['n_ctx']}")
        self.L.llama_memory_clear(self.L.llama_get_memory(self.ctx), True)
        self._decode([(tok, pos, 0, True) for pos, tok in enumerate(ids)])
        out = np.ctypeslib.as_array(self.L.llama_get_logits(self.ctx), shape=(len(ids), self.n_vocab))
        return out.copy()

    def counters(self):
        return self.last_counters

    def kv_cache_bytes(self, ids):
        caches = self.placement["kv_caches"]
        if not caches:
            return None
        layout = ", ".join(f"{c['bytes'] / 2**20:.2f} MiB over {c['cells']} cells ({c['layers']} layers)"
                           for c in caches)
        return {"bytes": kv_bytes_for(caches, len(ids)), "how": f"llama.cpp's load log: {layout}"}

    def info(self):
        L = self.L
        return {**self.placement, "n_gpu_layers": self.n_gpu_layers,
                "supports_gpu_offload": L.llama_supports_gpu_offload(),
                "file": self.path.name, "kv_cache": self.settings["kv_cache"], "n_ctx": self.settings["n_ctx"],
                "parameters": L.llama_model_n_params(self.model), "weight_bytes": L.llama_model_size(self.model)}


class LlamaCppBackend(Backend):
    exposes_logits = True
    name = "llamacpp"

    def checkpoint_settings(self, settings):
        return {"checkpoint_type": settings["checkpoint_type"]}

    def checkpoint_slug(self, checkpoint_settings):
        return f"gguf-{checkpoint_settings['checkpoint_type']}"

    def describe(self, settings):
        return {"quantization": settings["quantization"], "kv_cache": settings["kv_cache"]}

    def artifact_bytes(self, stage, settings, parameters):
        kind = settings["checkpoint_type"].upper() if stage == "checkpoint" else settings["quantization"]
        if stage == "engine" and kind == settings["checkpoint_type"].upper():
            return 0.0  # the checkpoint is the engine
        return parameters * FILE_TYPE_BITS[kind] / 8

    def batch_limit(self, settings):
        return MAX_SEQUENCES, f"the {MAX_SEQUENCES} sequences of one llama.cpp context"

    def availability(self, stage, settings):
        try:
            importlib.metadata.version("llama_cpp_python")
        except importlib.metadata.PackageNotFoundError:
            return "llama-cpp-python is not installed (run `make setup`)"
        return None

    def convert(self, snapshot, settings, out):
        if not CONVERTER.exists():
            raise EngineBenchError(f"llama.cpp converter not found at {CONVERTER}: run `make setup`")
        target = out / GGUF_NAME
        raw = out / f".converted-{GGUF_NAME}"
        started = time.perf_counter()
        cmd = [sys.executable, str(CONVERTER), str(snapshot), "--outfile", str(raw),
               "--outtype", settings["checkpoint_type"]]
        run_tool(cmd, "convert_hf_to_gguf.py")
        tokenizer = Path(snapshot) / TOKENIZER_GGUF
        if tokenizer.exists():
            replace_tokenizer(raw, tokenizer, target)
            raw.unlink()
            note = f"tokenizer metadata taken from the snapshot's {TOKENIZER_GGUF}"
        else:
            raw.rename(target)
            note = "tokenizer as converted"
        return {"timings": {"convert_s": time.perf_counter() - started}, "file": GGUF_NAME, "tokenizer": note,
                "converter": str(CONVERTER.relative_to(REPO)) if CONVERTER.is_relative_to(REPO) else str(CONVERTER)}

    def build(self, snapshot, checkpoint, settings, out):
        if settings["quantization"] == settings["checkpoint_type"].upper():
            return {"work": False, "reason": f"the {settings['quantization']} checkpoint GGUF is the engine"}
        import llama_cpp as L

        params = L.llama_model_quantize_default_params()
        params.ftype = getattr(L, f"LLAMA_FTYPE_MOSTLY_{settings['quantization']}")
        params.nthread = os.cpu_count() or 1
        started = time.perf_counter()
        rc = L.llama_model_quantize(str(Path(checkpoint) / GGUF_NAME).encode(), str(out / GGUF_NAME).encode(),
                                    ctypes.byref(params))
        if rc != 0:
            raise StageFailure(f"llama_model_quantize to {settings['quantization']} failed (rc={rc})")
        return {"timings": {"quantize_s": time.perf_counter() - started}, "file": GGUF_NAME}

    def served_file(self, snapshot, checkpoint, engine):
        path = Path(engine) / GGUF_NAME
        return path if path.exists() else Path(checkpoint) / GGUF_NAME

    def load(self, snapshot, checkpoint, engine, settings, *, threads, trust_remote_code):
        return LlamaCppEngine(self.served_file(snapshot, checkpoint, engine), settings, threads)

    def server_description(self, slots):
        return f"llama.cpp: `llama-server` of the engine's own llama.cpp build, {slots} slots with continuous batching"

    def server(self, engine_file, settings, *, port, slots, threads, snapshot):
        """llama-server (tools/server of the same llama.cpp source, `make llama-server`) with the
        engine's own context, KV type, flash attention and offload: `slots` sequences share n_ctx,
        continuous batching and the GGUF's chat template (--jinja) on, as they are by default."""
        from ..llamacpp_build import server_offloads, server_problem

        if problem := server_problem():
            raise StageUnavailable(problem)
        return self.server_command(engine_file, settings, port=port, slots=slots, threads=threads,
                                   offload=gpu_layers(settings, server_offloads()))

    def server_placeholders(self, settings):
        return {"offload": "<all layers if the server build offloads, else 0>"
                if settings.get("n_gpu_layers") is None else settings["n_gpu_layers"]}

    def server_command(self, engine_file, settings, *, port, slots, threads, offload):
        from ..llamacpp_build import server_binary

        cmd = [str(server_binary()), "--model", str(engine_file), "--host", "127.0.0.1", "--port", str(port),
               "--ctx-size", str(settings["n_ctx"]), "--parallel", str(slots), "--threads", str(threads),
               "--threads-batch", str(threads), "--cache-type-k", settings["kv_cache"],
               "--cache-type-v", settings["kv_cache"], "--flash-attn", "on" if settings["flash_attn"] else "off",
               "--n-gpu-layers", str(offload), "--jinja", "--no-webui", *server_split_flags(settings.get("parallel"))]
        return cmd + ([] if settings["offload_kqv"] else ["--no-kv-offload"])

    def versions(self):
        return {"llama_cpp_python": importlib.metadata.version("llama_cpp_python"),
                "gguf": importlib.metadata.version("gguf")}
