"""TensorRT-LLM backend, TensorRT engine path of release 1.2.1 (the NGC container
nvcr.io/nvidia/tensorrt-llm/release:1.2.1).

- checkpoint (stage 1):
  - quantized formats (fp8, int8_sq, int4_awq, w4a8_awq; KV cache none/fp8/int8): NVIDIA ModelOpt
    called directly, as examples/quantization/quantize.py does (`enginebench.modelopt_quant`). Runs
    on any host, CPU included.
  - unquantized (qformat none): the model family's examples/models/core/<family>/convert_checkpoint.py
    inside the container. Chosen over ModelOpt's unquantized export because it is the documented
    1.2.1 path the experiment measured, and whether ModelOpt's export gives the same checkpoint
    (config fields, fused biases) cannot be checked on a host without TensorRT-LLM.
- engine (stage 2): `trtllm-build`, every option from config, a timing cache shared by builds.
- runtime: `tensorrt_llm._tensorrt_engine.LLM(model=ENGINE, tokenizer=SNAPSHOT)`.

Flags are checked against the 1.2.x sources; tests/test_trtllm.py cites file and line for each.
Where TensorRT-LLM is missing (no `trtllm-build`, no `tensorrt_llm`), stages that need it write an
"unavailable" record with the exact command that would have run.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import shutil
import time
from pathlib import Path

from ..errors import EngineBenchError, StageFailure
from ..preflight import fp8_capable
from ..tools import run_tool
from .base import Backend, Engine

CONTAINER = "nvcr.io/nvidia/tensorrt-llm/release:1.2.1"
# Examples folder inside the container (the image's TensorRT-LLM checkout).
EXAMPLES = Path(os.environ.get("ENGINEBENCH_TRTLLM_EXAMPLES", "/app/tensorrt_llm/examples"))
# HF architecture -> model family folder of convert_checkpoint.py under examples/models/core/
CONVERTERS = {"Qwen2ForCausalLM": "qwen", "LlamaForCausalLM": "llama", "MistralForCausalLM": "llama"}
TIMING_CACHE = "trtllm-timing.cache"  # beside the engines folder, reused by every build of a model
FP8_SETTINGS = "qformat fp8 or w4a8_awq, or kv_cache_dtype fp8"
# bytes per weight of a checkpoint (and of the engine built from it), by qformat; none: the dtype's 2
QFORMAT_WEIGHT_BYTES = {"none": 2.0, "fp8": 1.0, "int8_sq": 1.0, "int4_awq": 0.5, "w4a8_awq": 0.5}


def needs_fp8(settings: dict) -> bool:
    """FP8 weights or activations (W4A8 AWQ has FP8 activations) or an FP8 KV cache."""
    return settings["qformat"] in ("fp8", "w4a8_awq") or settings["kv_cache_dtype"] == "fp8"


@functools.cache
def gpu_compute_capability() -> tuple[int, int] | None:
    """The first GPU's compute capability read from `nvidia-smi` (never guessed from its name)."""
    from ..environment import gpus

    found = gpus()
    return tuple(found[0]["compute_capability"]) if found else None


def check_fp8_hardware(settings: dict, capability: tuple[int, int] | None) -> None:
    if not needs_fp8(settings):
        return
    if capability is None:
        raise EngineBenchError(f"this engine needs FP8 ({FP8_SETTINGS}), which needs an NVIDIA GPU of compute "
                               "capability >= 8.9; nvidia-smi reports no GPU")
    if not fp8_capable(capability):
        raise EngineBenchError(f"this engine needs FP8 ({FP8_SETTINGS}): compute capability >= 8.9 "
                               f"(Ada, Hopper, Blackwell), but the GPU reports {capability[0]}.{capability[1]}")


def convert_command(snapshot: Path, out: Path, settings: dict, architecture: str) -> list[str]:
    """examples/models/core/<family>/convert_checkpoint.py for an unquantized checkpoint."""
    family = CONVERTERS.get(architecture)
    if family is None:
        raise StageFailure(f"no convert_checkpoint.py is mapped for architecture {architecture} "
                           f"(known: {', '.join(CONVERTERS)})")
    return ["python", str(EXAMPLES / "models" / "core" / family / "convert_checkpoint.py"),
            "--model_dir", str(snapshot), "--output_dir", str(out), "--dtype", settings["dtype"],
            "--tp_size", "1", "--workers", "1"]


def build_command(checkpoint: Path, out: Path, settings: dict) -> list[str]:
    """`trtllm-build` with every option that the config sets (unset: trtllm-build's default)."""
    build = settings["build"]
    cmd = ["trtllm-build", "--checkpoint_dir", str(checkpoint), "--output_dir", str(out)]
    for flag in ("gemm_plugin", "max_batch_size", "max_input_len", "max_seq_len", "max_num_tokens",
                 "use_fp8_context_fmha", "kv_cache_type", "workers"):
        if build.get(flag) is not None:
            cmd += [f"--{flag}", str(build[flag])]
    if build.get("gather_context_logits"):
        cmd.append("--gather_context_logits")
    cache = str(Path(out).parent / TIMING_CACHE)
    return cmd + ["--input_timing_cache", cache, "--output_timing_cache", cache]


def runtime_call(engine: Path, snapshot: Path) -> str:
    return f"tensorrt_llm._tensorrt_engine.LLM(model={str(engine)!r}, tokenizer={str(snapshot)!r})"


def _architecture(snapshot: Path) -> str:
    config = json.loads((Path(snapshot) / "config.json").read_text())
    return (config.get("architectures") or ["unknown"])[0]


class TrtllmEngine(Engine):
    """The TensorRT engine through the LLM API (written to 1.2.1's API; runs only where it is installed)."""

    def __init__(self, engine: Path, snapshot: Path, trust_remote_code: bool):
        from tensorrt_llm._tensorrt_engine import LLM

        self.llm = LLM(model=str(engine), tokenizer=str(snapshot), trust_remote_code=trust_remote_code)

    def generate(self, batch, max_new_tokens, stop_ids, fixed_length, on_token=None):
        from tensorrt_llm import SamplingParams

        # Greedy (top_k=1). end_id -1 matches no token: exactly max_new_tokens for throughput runs.
        # detokenize=False: no incremental detokenization in our process while tokens are timed.
        params = SamplingParams(max_tokens=max_new_tokens, top_k=1, end_id=-1 if fixed_length else stop_ids[0],
                                detokenize=False)
        if on_token is None:
            outputs = self.llm.generate(batch, sampling_params=params, use_tqdm=False)
            rows = [list(out.outputs[0].token_ids) for out in outputs]
        else:
            rows = self._stream(batch, params, on_token)
        if not fixed_length:  # the other stop ids (end_id takes one)
            rows = [row[:next((i for i, t in enumerate(row) if t in stop_ids), len(row))] for row in rows]
        return rows

    def _stream(self, batch, params, on_token):
        """All requests submitted at once with streaming=True, each consumed by its own asyncio task
        (the LLM API's documented pattern, examples/llm-api/llm_inference_async_streaming.py);
        on_token is called for every new token of an update (one update may carry several)."""
        import asyncio

        async def run():
            # generate_async must be called inside the running loop: the result's asyncio queue is
            # chosen when it is created (executor/result.py).
            results = [self.llm.generate_async(ids, sampling_params=params, streaming=True) for ids in batch]

            async def consume(row, result):
                async for update in result:
                    for _ in update.outputs[0].token_ids_diff:
                        on_token(row)
                return list(result.outputs[0].token_ids)

            return await asyncio.gather(*(consume(row, r) for row, r in enumerate(results)))

        return asyncio.run(run())

    def logits(self, ids):
        """Context logits; the engine must be built with --gather_context_logits (build.gather_context_logits)."""
        from tensorrt_llm import SamplingParams

        out = self.llm.generate([ids], sampling_params=SamplingParams(max_tokens=1, top_k=1,
                                                                      return_context_logits=True), use_tqdm=False)
        if out[0].context_logits is None:
            return None
        return out[0].context_logits.float().cpu().numpy()

    def info(self):
        return {"device": "cuda", "runtime": "tensorrt_llm._tensorrt_engine.LLM"}


class TrtllmBackend(Backend):
    name = "trtllm"
    gpu = True
    runs_in_container = True

    def checkpoint_settings(self, settings):
        ckpt = {k: settings[k] for k in ("dtype", "qformat", "kv_cache_dtype")}
        if settings["qformat"] == "none":
            ckpt["container"] = settings["container"]
        else:
            ckpt.update(calibration=settings["calibration"], awq_block_size=settings["awq_block_size"])
        return ckpt

    def checkpoint_slug(self, ckpt):
        parts = ["trtllm", ckpt["qformat"] if ckpt["qformat"] != "none" else "unquantized"]
        if ckpt["kv_cache_dtype"] != "none":
            parts.append(f"kv-{ckpt['kv_cache_dtype']}")
        return "-".join(parts + [ckpt["dtype"]])

    def describe(self, settings):
        quant = settings["qformat"] if settings["qformat"] != "none" else settings["dtype"]
        kv = settings["kv_cache_dtype"] if settings["kv_cache_dtype"] != "none" else settings["dtype"]
        return {"quantization": quant, "kv_cache": kv}

    def predicts(self, settings):
        return "ModelOpt fake-quant" if settings["qformat"] != "none" else None

    def predictor(self, snapshot, settings, *, threads, trust_remote_code):
        import modelopt.torch.quantization as mtq
        import torch

        from ..modelopt_quant import fake_quantize
        from .torch_backend import TorchEngine

        torch.set_num_threads(threads)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model, record = fake_quantize(Path(snapshot), settings, trust_remote_code=trust_remote_code, device=device)
        # Fold the weight quantizers into the weights once instead of re-quantizing them at every
        # forward pass: identical logits, ~6x faster generation on CPU.
        mtq.fold_weight(model)
        engine = TorchEngine(model, torch.device(device))
        engine.calibration = record
        return engine

    def artifact_bytes(self, stage, settings, parameters):
        return parameters * QFORMAT_WEIGHT_BYTES[settings["qformat"]]

    def batch_limit(self, settings):
        limit = settings["build"]["max_batch_size"]
        return None if limit is None else (limit, "its build.max_batch_size")

    def settings_error(self, settings):
        if settings["qformat"] == "none" and settings["kv_cache_dtype"] != "none":
            return "kv_cache_dtype needs a quantized qformat (quantize.py sets it; convert_checkpoint.py cannot)"
        return None

    def check_host(self, settings):
        if self.availability("engine", settings) is None:
            check_fp8_hardware(settings, gpu_compute_capability())

    def host_identity(self):
        capability = gpu_compute_capability()
        return {"compute_capability": ".".join(map(str, capability)) if capability else None}

    def availability(self, stage, settings):
        if stage == "checkpoint" and settings["qformat"] != "none":
            try:
                importlib.metadata.version("nvidia-modelopt")
            except importlib.metadata.PackageNotFoundError:
                return "nvidia-modelopt is not installed (run `make setup`)"
            return None
        missing = []
        if shutil.which("trtllm-build") is None:
            missing.append("no trtllm-build on PATH")
        try:
            importlib.metadata.version("tensorrt_llm")
        except importlib.metadata.PackageNotFoundError:
            missing.append("no tensorrt_llm module")
        if missing:
            return (f"TensorRT-LLM not available ({', '.join(missing)}); it runs in the NGC container "
                    f"{settings['container']} on an NVIDIA GPU")
        return None

    def planned(self, stage, snapshot, checkpoint, engine, settings):
        if stage == "checkpoint":
            if settings["qformat"] != "none":
                return "ModelOpt in-process (mtq.quantize + export_tensorrt_llm_checkpoint)"
            try:
                return " ".join(convert_command(snapshot, checkpoint, settings, _architecture(snapshot)))
            except StageFailure as refusal:
                return f"nothing: {refusal}"
        if stage == "engine":
            return " ".join(build_command(checkpoint, engine, settings))
        return runtime_call(engine, snapshot)

    def convert(self, snapshot, settings, out):
        if settings["qformat"] == "none":
            started = time.perf_counter()
            run_tool(convert_command(snapshot, out, settings, _architecture(snapshot)), "convert_checkpoint.py")
            return {"timings": {"convert_s": time.perf_counter() - started}}
        from ..modelopt_quant import export_checkpoint, fake_quantize

        model, record = fake_quantize(Path(snapshot), settings, trust_remote_code=False)
        exported = export_checkpoint(model, settings, out)
        return {"timings": {"calibrate_s": record.pop("calibration_s"), "export_s": exported.pop("export_s")},
                "modelopt": {**record, **exported}, "versions_modelopt": importlib.metadata.version("nvidia-modelopt")}

    def build(self, snapshot, checkpoint, settings, out):
        check_fp8_hardware(settings, gpu_compute_capability())
        started = time.perf_counter()
        run_tool(build_command(checkpoint, out, settings), "trtllm-build")
        return {"timings": {"build_s": time.perf_counter() - started}}

    def load(self, snapshot, checkpoint, engine, settings, *, threads, trust_remote_code):
        return TrtllmEngine(Path(engine), Path(snapshot), trust_remote_code)

    def versions(self):
        versions = {}
        for package in ("tensorrt_llm", "nvidia-modelopt", "torch"):
            try:
                versions[package] = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                versions[package] = None
        return versions
