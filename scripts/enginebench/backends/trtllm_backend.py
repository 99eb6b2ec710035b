"""TensorRT-LLM backend, TensorRT engine path of release 1.2.1 (the NGC container
nvcr.io/nvidia/tensorrt-llm/release:1.2.1).

Every stage below runs inside the container, with the container's own libraries (transformers
4.57.3, ModelOpt 0.37, numpy < 2): the Snakemake rules declare it (profiles/trtllm runs them through
`apptainer exec --nv`), or the whole workflow runs in it (scripts/trtllm_docker.sh).

- checkpoint (stage 1), on the GPU:
  - quantized formats (fp8, int8_sq, int4_awq, w4a8_awq; KV cache none/fp8/int8): the container's own
    examples/quantization/quantize.py, which also patches the fields ModelOpt's export leaves out
    (Qwen's qwen_type, norm_epsilon, rotary_base and intermediate_size: "Workaround for qwen version" in
    tensorrt_llm/quantization/quantize_by_modelopt.py@585c7565).
  - unquantized (qformat none): the model family's examples/models/core/<family>/convert_checkpoint.py.
- engine (stage 2): `trtllm-build`, every option from config, `--logits_dtype float32`, a timing
  cache shared by builds. The timed engine is built without `--gather_context_logits`; the quality
  stage reads logits from a second engine of the same checkpoint and settings built with it.
- runtime: `tensorrt_llm._tensorrt_engine.LLM(model=ENGINE, tokenizer=SNAPSHOT)`, KV-block reuse off.

The host-side ModelOpt code (`enginebench.modelopt_quant`) only makes the "predicted by ModelOpt
fake-quant" quality rows, on any CPU.

Flags are checked against the 1.1-1.3-line sources; tests/test_trtllm.py cites file and commit for each.
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

from ..calibration import OFFLINE_ENV
from ..errors import EngineBenchError, StageFailure, StageUnavailable
from ..preflight import fp8_capable
from ..progress import progress
from ..tools import run_tool
from .base import Backend, Engine, parallel_gpus

CONTAINER = "nvcr.io/nvidia/tensorrt-llm/release:1.2.1"
# Examples folder inside the container (the image's TensorRT-LLM checkout).
EXAMPLES = Path(os.environ.get("ENGINEBENCH_TRTLLM_EXAMPLES", "/app/tensorrt_llm/examples"))
# HF architecture -> model family folder of convert_checkpoint.py under examples/models/core/
CONVERTERS = {"Qwen2ForCausalLM": "qwen", "LlamaForCausalLM": "llama", "MistralForCausalLM": "llama"}
TIMING_CACHE = "trtllm-timing.cache"  # beside the engines folder, reused by every build of a model
FP8_SETTINGS = "qformat fp8 or w4a8_awq, or kv_cache_dtype fp8"
INTEGER_SETTINGS = "qformat int8_sq, int4_awq or w4a8_awq, or kv_cache_dtype int8"
# quantize.py --qformat values whose checkpoint carries FP8 attention inputs (builder.py keeps FP8
# context FMHA only for the quant_algo FP8, W4A8_AWQ, NVFP4)
FP8_CONTEXT_FMHA_QFORMATS = ("fp8", "w4a8_awq")
# bytes per weight of a checkpoint (and of the engine built from it), by qformat; none: the dtype's 2
QFORMAT_WEIGHT_BYTES = {"none": 2.0, "fp8": 1.0, "int8_sq": 1.0, "int4_awq": 0.5, "w4a8_awq": 0.5}


def needs_fp8(settings: dict) -> bool:
    """FP8 weights or activations (W4A8 AWQ has FP8 activations) or an FP8 KV cache."""
    return settings["qformat"] in ("fp8", "w4a8_awq") or settings["kv_cache_dtype"] == "fp8"


# The 1.2.1 image is built on NVIDIA's PyTorch 25.12 container, "based on CUDA 13.1.0" (PyTorch release notes,
# docs.nvidia.com/deeplearning/frameworks/pytorch-release-notes/rel-25-12.html); CUDA 13.x applications need a
# driver >= 580 (CUDA Compatibility, "Minor Version Compatibility", Table 1:
# docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html). Older data-center drivers may run it
# through the forward-compatibility package; workstation GPUs (RTX 6000 Ada) have none, so none is assumed.
MIN_DRIVER = 580


@functools.cache
def _first_gpu() -> dict | None:
    """The first GPU as `nvidia-smi` reports it (one call for every check of this process)."""
    from ..environment import gpus

    found = gpus()
    return found[0] if found else None


def gpu_compute_capability() -> tuple[int, int] | None:
    """The first GPU's compute capability read from `nvidia-smi` (never guessed from its name)."""
    gpu = _first_gpu()
    return tuple(gpu["compute_capability"]) if gpu else None


def gpu_driver() -> str | None:
    """The NVIDIA driver version `nvidia-smi` reports, or None without a GPU."""
    gpu = _first_gpu()
    return gpu["driver"] if gpu else None


def check_driver(driver: str | None) -> None:
    """Refuse, before a ~30 GB pull and a first CUDA call that fails, a driver too old for the container."""
    if driver is None:
        return
    try:
        major = int(driver.split(".")[0])
    except ValueError:
        return  # a driver string nvidia-smi does not give: let the container's own check speak
    if major < MIN_DRIVER:
        raise EngineBenchError(f"the TensorRT-LLM container {CONTAINER} is built on CUDA 13.1 (NVIDIA PyTorch 25.12), "
                               f"which needs an NVIDIA driver >= {MIN_DRIVER}; this host's driver is {driver}: "
                               "upgrade the driver, or leave the TensorRT-LLM variants out of the config")


def needs_integer_kernels(settings: dict) -> bool:
    """INT8/INT4 weights (SmoothQuant, AWQ) or an INT8 KV cache."""
    return settings["qformat"] in ("int8_sq", "int4_awq", "w4a8_awq") or settings["kv_cache_dtype"] == "int8"


def check_hardware(settings: dict, capability: tuple[int, int] | None) -> None:
    """Refuse settings trtllm-build 1.2.1 refuses on this GPU: FP8 below compute capability 8.9, and
    INT8/INT4 formats on 10.x-11.x (builder.py: "INT8/INT4 quantization is not supported on SM>=100",
    "SmoothQuant is not supported on SM>=100")."""
    if needs_fp8(settings):
        if capability is None:
            raise EngineBenchError(f"this engine needs FP8 ({FP8_SETTINGS}), which needs an NVIDIA GPU of compute "
                                   "capability >= 8.9; nvidia-smi reports no GPU")
        if not fp8_capable(capability):
            raise EngineBenchError(f"this engine needs FP8 ({FP8_SETTINGS}): compute capability >= 8.9 "
                                   f"(Ada, Hopper, Blackwell), but the GPU reports {capability[0]}.{capability[1]}")
    if needs_integer_kernels(settings) and capability is not None and 10 <= capability[0] < 12:
        raise EngineBenchError(f"this engine uses INT8/INT4 kernels ({INTEGER_SETTINGS}), which trtllm-build "
                               f"{CONTAINER.rsplit(':', 1)[1]} refuses on compute capability 10.x-11.x; "
                               f"the GPU reports {capability[0]}.{capability[1]}")


def effective_fp8_context_fmha(settings: dict) -> bool:
    """What trtllm-build 1.2.1 makes of use_fp8_context_fmha with paged context FMHA (its default):
    on exactly when the checkpoint is FP8 (or W4A8) and its KV cache is FP8, whatever was asked
    (builder.py forces it both ways)."""
    return settings["qformat"] in FP8_CONTEXT_FMHA_QFORMATS and settings["kv_cache_dtype"] == "fp8"


def quantize_command(snapshot: Path, out: Path, settings: dict) -> list[str]:
    """The container's examples/quantization/quantize.py for a quantized checkpoint (on the GPU)."""
    calib = settings["calibration"]
    cmd = ["python", str(EXAMPLES / "quantization" / "quantize.py"), "--model_dir", str(snapshot),
           "--output_dir", str(out), "--dtype", settings["dtype"], "--qformat", settings["qformat"]]
    if parallel_gpus(settings) > 1:
        cmd += ["--tp_size", str(parallel_gpus(settings))]
    if settings["kv_cache_dtype"] != "none":
        cmd += ["--kv_cache_dtype", settings["kv_cache_dtype"]]
    cmd += ["--calib_dataset", calib["dataset"], "--calib_size", str(calib["size"]),
            "--calib_max_seq_length", str(calib["max_seq_length"]), "--batch_size", str(calib["batch_size"]),
            "--seed", str(calib["seed"])]
    if "awq" in settings["qformat"]:
        cmd += ["--awq_block_size", str(settings["awq_block_size"])]
    return cmd


def convert_command(snapshot: Path, out: Path, settings: dict, architecture: str | None) -> list[str]:
    """examples/models/core/<family>/convert_checkpoint.py for an unquantized checkpoint (its job
    declares the GPU, which the converter may load the model onto)."""
    # None: not known yet (the snapshot is not there at planning time)
    family = "<family of its architecture>" if architecture is None else CONVERTERS.get(architecture)
    if family is None:
        raise StageFailure(f"no convert_checkpoint.py is mapped for architecture {architecture} "
                           f"(known: {', '.join(CONVERTERS)})")
    return ["python", str(EXAMPLES / "models" / "core" / family / "convert_checkpoint.py"),
            "--model_dir", str(snapshot), "--output_dir", str(out), "--dtype", settings["dtype"],
            "--tp_size", str(parallel_gpus(settings)), "--workers", "1"]


def build_command(checkpoint: Path, out: Path, settings: dict) -> list[str]:
    """`trtllm-build` with every option that the config sets (unset: trtllm-build's default), float32
    logits for every engine (ModelOpt's export writes float16, convert_checkpoint.py float32), and
    --gather_context_logits only for the quality stage's logits engine (Plan.logits_engine_spec):
    it makes every context step run lm_head over the whole prompt."""
    build = settings["build"]
    cmd = ["trtllm-build", "--checkpoint_dir", str(checkpoint), "--output_dir", str(out)]
    for flag in ("gemm_plugin", "max_batch_size", "max_input_len", "max_seq_len", "max_num_tokens",
                 "use_fp8_context_fmha", "kv_cache_type", "workers"):
        if build.get(flag) is not None:
            cmd += [f"--{flag}", str(build[flag])]
    cmd += ["--logits_dtype", "float32"]
    if build.get("gather_context_logits"):
        cmd.append("--gather_context_logits")
    cache = str(Path(out).parent / TIMING_CACHE)
    return cmd + ["--input_timing_cache", cache, "--output_timing_cache", cache]


def runtime_call(engine: Path, snapshot: Path, settings: dict) -> str:
    # double quotes: the line is also shell-quoted into the job's log (rules/trtllm.smk)
    ranks = f"tensor_parallel_size={parallel_gpus(settings)}, " if parallel_gpus(settings) > 1 else ""
    return (f'tensorrt_llm._tensorrt_engine.LLM(model="{engine}", tokenizer="{snapshot}", {ranks}'
            "kv_cache_config=KvCacheConfig(enable_block_reuse=False))")


def rank_engine_bytes(engine: Path) -> list[int]:
    """The size of each rank's engine file (rank0.engine, rank1.engine, ...: one per rank, Engine.save in
    tensorrt_llm/builder.py), which is close to the weights the rank's GPU holds (docs/source/reference/memory.md
    @7ff5302: "the weights memory size is close to the TensorRT engine size")."""
    files = sorted(Path(engine).glob("rank*.engine"), key=lambda f: int(f.stem.removeprefix("rank")))
    return [f.stat().st_size for f in files]


def llm_kwargs(kv_tokens: int | None = None, ranks: int = 1) -> dict:
    """LLM(...) options besides model and tokenizer: no KV-block reuse (on by default), or repeated
    identical prompts would time a cached prefix (and FP8 KV + reuse breaks Qwen2.5 output, #2699).
    `kv_tokens` caps the KV pool (KvCacheConfig.max_tokens: the smaller of it and the free-memory
    fraction, llm_args.py@fcd3f316): see logits_kv_tokens."""
    from tensorrt_llm.llmapi import KvCacheConfig

    cap = {} if kv_tokens is None else {"max_tokens": kv_tokens}
    # the engine's mapping decides its ranks; the LLM API refuses a tensor_parallel_size other than 1 or that
    # (llm_args.py@fcd3f316, _load_config_from_engine), and with it set starts one MPI worker per GPU itself
    parallel = {"tensor_parallel_size": ranks} if ranks > 1 else {}
    return {"kv_cache_config": KvCacheConfig(enable_block_reuse=False, **cap), **parallel}


def logits_kv_tokens(engine: Path) -> int | None:
    """For an engine built with --gather_context_logits (the quality stage's): its max_seq_len, the most
    one scored window can hold. That engine scores one window at a time, and a KV pool of 90 % of the free
    memory (the default) would leave no room for the window's float32 context logits (1,024 tokens of a
    152k vocabulary: 0.6 GB) on a 24-48 GB GPU. None for the timed engine (its pool stays the default)."""
    try:
        build = json.loads((Path(engine) / "config.json").read_text())["build_config"]
    except (OSError, KeyError, ValueError):
        return None
    return int(build["max_seq_len"]) if build.get("gather_context_logits") and build.get("max_seq_len") else None


def sampling_kwargs(max_new_tokens: int, stop_ids: list[int], fixed_length: bool) -> dict:
    """SamplingParams(...) options: greedy; a fixed-length run ignores end-of-sequence, any other
    stops at every stop id (end_id takes one, stop_token_ids the rest)."""
    kwargs = {"max_tokens": max_new_tokens, "top_k": 1, "detokenize": False}
    if fixed_length:
        return {**kwargs, "ignore_eos": True}
    return {**kwargs, "end_id": stop_ids[0], "stop_token_ids": list(stop_ids)}


def apptainer_launcher(settings: dict) -> list[str]:
    """How a host job starts a command in the container with the GPUs (profiles/trtllm's way: --nv, the
    container's own environment), from the repository root (apptainer binds the working directory)."""
    return ["apptainer", "exec", "--nv", "--cleanenv", f"docker://{settings['container']}"]


def _architecture(snapshot: Path) -> str:
    config = json.loads((Path(snapshot) / "config.json").read_text())
    return (config.get("architectures") or ["unknown"])[0]


class TrtllmEngine(Engine):
    """The TensorRT engine through the LLM API (written to 1.2.1's API; runs only where it is installed)."""

    def __init__(self, engine: Path, snapshot: Path, trust_remote_code: bool, ranks: int = 1):
        from tensorrt_llm._tensorrt_engine import LLM

        self.engine, self.ranks = Path(engine), ranks

        kv_tokens = logits_kv_tokens(engine)
        if kv_tokens is not None:
            progress(f"logits engine: KvCacheConfig(enable_block_reuse=False, max_tokens={kv_tokens}), the rest of "
                     "the GPU's memory left to the context logits")
        self.llm = LLM(model=str(engine), tokenizer=str(snapshot), trust_remote_code=trust_remote_code,
                       **llm_kwargs(kv_tokens, ranks))

    def generate(self, batch, max_new_tokens, stop_ids, fixed_length, on_token=None):
        from tensorrt_llm import SamplingParams

        # detokenize=False: no incremental detokenization in our process while tokens are timed.
        params = SamplingParams(**sampling_kwargs(max_new_tokens, stop_ids, fixed_length))
        if on_token is None:
            outputs = self.llm.generate(batch, sampling_params=params, use_tqdm=False)
            rows = [list(out.outputs[0].token_ids) for out in outputs]
        else:
            rows = self._stream(batch, params, on_token)
        if not fixed_length:  # a stop token, where the runtime returns it, is not part of the answer
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
        """Context logits; only the logits engine is built with --gather_context_logits."""
        from tensorrt_llm import SamplingParams

        out = self.llm.generate([ids], sampling_params=SamplingParams(max_tokens=1, top_k=1,
                                                                      return_context_logits=True), use_tqdm=False)
        if out[0].context_logits is None:
            return None
        return out[0].context_logits.float().cpu().numpy()

    def info(self):
        info = {"device": "cuda", "runtime": "tensorrt_llm._tensorrt_engine.LLM",
                "rank_engine_bytes": rank_engine_bytes(self.engine)}
        if self.ranks > 1:
            info["tensor_parallel"] = {"ranks": self.ranks, "collectives": "nccl (TensorRT-LLM's MPI workers)"}
        return info


class TrtllmBackend(Backend):
    name = "trtllm"
    gpu = True
    runs_in_container = True
    separate_logits_engine = True

    def gpus(self, settings, stage):
        # stage 1 converts or calibrates on one GPU, however many ranks it writes; trtllm-build builds its
        # ranks on as many GPUs as it has workers (capped at the GPUs it sees: BUILD main())
        if stage == "engine":
            return max(1, min(parallel_gpus(settings), settings["build"]["workers"] or 1))
        return super().gpus(settings, stage)

    def checkpoint_settings(self, settings):
        ckpt = {k: settings[k] for k in ("dtype", "qformat", "kv_cache_dtype")}
        ckpt["container"] = settings["container"]
        if parallel_gpus(settings) > 1:  # a checkpoint of that many ranks
            ckpt["parallel"] = settings["parallel"]
        if settings["qformat"] != "none":
            ckpt.update(calibration=settings["calibration"], awq_block_size=settings["awq_block_size"])
        return ckpt

    def checkpoint_slug(self, ckpt):
        parts = ["trtllm", ckpt["qformat"] if ckpt["qformat"] != "none" else "unquantized"]
        if ckpt["kv_cache_dtype"] != "none":
            parts.append(f"kv-{ckpt['kv_cache_dtype']}")
        return "-".join(parts + [ckpt["dtype"]] + ([f"tp{parallel_gpus(ckpt)}"] if parallel_gpus(ckpt) > 1 else []))

    def describe(self, settings):
        quant = settings["qformat"] if settings["qformat"] != "none" else settings["dtype"]
        kv = settings["kv_cache_dtype"] if settings["kv_cache_dtype"] != "none" else settings["dtype"]
        # what trtllm-build makes of use_fp8_context_fmha, not what was asked (settings_error
        # refuses an ask it would override)
        return {"quantization": quant, "kv_cache": kv,
                "fp8_context_fmha": "on" if effective_fp8_context_fmha(settings) else "off"}

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
        asked = settings["build"]["use_fp8_context_fmha"]
        effective = effective_fp8_context_fmha(settings)
        if asked is not None and (asked == "enable") != effective:
            return (f"build.use_fp8_context_fmha: {asked} would be overridden: with paged context FMHA "
                    f"(trtllm-build's default) FP8 context FMHA is {'on' if effective else 'off'} for qformat "
                    f"{settings['qformat']} with kv_cache_dtype {settings['kv_cache_dtype']}; leave it unset")
        return None

    def check_host(self, settings):
        if self.availability("engine", settings) is None:
            check_driver(gpu_driver())
            check_hardware(settings, gpu_compute_capability())

    def host_identity(self):
        capability = gpu_compute_capability()
        return {"compute_capability": ".".join(map(str, capability)) if capability else None}

    def availability(self, stage, settings):
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

    def stage1_command(self, snapshot, out, settings, read_snapshot=True):
        if settings["qformat"] != "none":
            return quantize_command(snapshot, out, settings)
        return convert_command(snapshot, out, settings, _architecture(snapshot) if read_snapshot else None)

    @staticmethod
    def stage1_env(settings) -> dict[str, str]:
        """quantize.py's added environment: the hub offline where it reads prepared calibration data."""
        return OFFLINE_ENV if settings.get("calibration", {}).get("prepared") else {}

    def planned(self, stage, snapshot, checkpoint, engine, settings, read_snapshot=True):
        if stage == "checkpoint":
            try:
                env = [f"{k}={v}" for k, v in self.stage1_env(settings).items()]
                return " ".join(env + self.stage1_command(snapshot, checkpoint, settings, read_snapshot))
            except StageFailure as refusal:
                return f"nothing: {refusal}"
        if stage == "engine":
            return " ".join(build_command(checkpoint, engine, settings))
        return runtime_call(engine, snapshot, settings)

    def container_command(self, stage, snapshot, checkpoint, engine, settings):
        # the converter's model family is known only once the snapshot is there
        return self.planned(stage, snapshot, checkpoint, engine, settings, read_snapshot=False)

    def convert(self, snapshot, settings, out):
        check_hardware(settings, gpu_compute_capability())
        tool = "quantize.py" if settings["qformat"] != "none" else "convert_checkpoint.py"
        started = time.perf_counter()
        run_tool(self.stage1_command(snapshot, out, settings), tool, self.stage1_env(settings))
        return {"timings": {f"{tool.split('.')[0]}_s": time.perf_counter() - started}}

    def build(self, snapshot, checkpoint, settings, out):
        check_hardware(settings, gpu_compute_capability())
        started = time.perf_counter()
        run_tool(build_command(checkpoint, out, settings), "trtllm-build")
        return {"timings": {"build_s": time.perf_counter() - started},
                "fp8_context_fmha": effective_fp8_context_fmha(settings)}

    def server_description(self, slots):
        return (f"TensorRT-LLM: `trtllm-serve` on the engine folder (TensorRT backend, in its container), "
                f"{slots} requests batched in flight at most")

    def server(self, engine_file, settings, *, port, slots, threads, snapshot):
        """trtllm-serve (SERVE below) on the engine folder with the TensorRT backend and the snapshot's
        tokenizer (its chat template). It runs where TensorRT-LLM is: on PATH inside the container (the whole
        workflow there, scripts/trtllm_docker.sh), else started in the container by apptainer from the host,
        where GuideLLM runs (profiles/trtllm: the serve job is a host job)."""
        if shutil.which("trtllm-serve"):
            launcher = []
        elif shutil.which("apptainer"):
            launcher = apptainer_launcher(settings)
        else:
            raise StageUnavailable(f"trtllm-serve runs in the container {settings['container']}: this host has "
                                   "neither trtllm-serve nor apptainer to start it")
        return self.server_command(engine_file, settings, port=port, slots=slots, threads=threads,
                                   snapshot=snapshot, launcher=launcher)

    served_placeholder = "<engine folder>"

    def server_placeholders(self, settings):
        return {"snapshot": "<snapshot>", "launcher": apptainer_launcher(settings)}

    def server_command(self, engine_file, settings, *, port, slots, threads, snapshot, launcher):
        """SERVE = tensorrt_llm/commands/serve.py@00209af1: `trtllm-serve MODEL --backend tensorrt --tokenizer
        T --host H --port P --max_batch_size B [--tp_size N]`; the engine's mapping decides its ranks and
        --tp_size must be 1 or that (the LLM API's check). The batch is the engine's build.max_batch_size at
        most (a runtime limit above the build's is refused or clamped, by release)."""
        limit = settings["build"]["max_batch_size"]
        cmd = [*launcher, "trtllm-serve", str(engine_file), "--backend", "tensorrt", "--tokenizer", str(snapshot),
               "--host", "127.0.0.1", "--port", str(port),
               "--max_batch_size", str(min(slots, limit) if limit else slots)]
        return cmd + (["--tp_size", str(parallel_gpus(settings))] if parallel_gpus(settings) > 1 else [])

    def load(self, snapshot, checkpoint, engine, settings, *, threads, trust_remote_code):
        return TrtllmEngine(Path(engine), Path(snapshot), trust_remote_code, parallel_gpus(settings))

    def versions(self):
        versions = {}
        for package in ("tensorrt_llm", "nvidia-modelopt", "torch"):
            try:
                versions[package] = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                versions[package] = None
        return versions
