"""TensorRT-LLM backend on a host without TensorRT-LLM or a GPU.

Stage 1 of the quantized formats runs for real (NVIDIA ModelOpt on CPU) on the tiny model; the
trtllm-build and runtime invocations are checked flag by flag against the TensorRT-LLM 1.2-line
sources, cited below as path@commit:line (NVIDIA/TensorRT-LLM, the versions read through the search
index: the 1.2.1 tag itself was too large to fetch; triton-inference-server/tensorrtllm_backend
pins TENSORRTLLM_REPO_TAG=release/1.2.1 for the same release):
  BUILD   = tensorrt_llm/commands/build.py@65f1d1536e18aea3380e6e270e00895a709333eb
  PLUGIN  = tensorrt_llm/plugin/plugin.py@c20322ffd3dc0740ca530c9fad989b22e64f6e06
  QUANT   = examples/quantization/quantize.py@c8c6df08bd0ead54cd47f7973e1e425c28a174cd
  QWEN    = examples/models/core/qwen/convert_checkpoint.py@65b31db1b401d3752b8ebe7c29093cbfb6af04b7
  LLMAPI  = tensorrt_llm/llmapi/llm.py@4c05a74891e4df8066f08ed4ce14b0972abe4e25
  RESULT  = tensorrt_llm/executor/result.py@a678b91aafbeff265cd0b764abb59d7def624ac2
"""

import json
import os
from pathlib import Path

import pytest
from cliflow import run_pipeline
from safetensors import safe_open

from enginebench import paths
from enginebench.backends.trtllm_backend import (
    CONTAINER,
    EXAMPLES,
    TrtllmEngine,
    build_command,
    check_fp8_hardware,
    convert_command,
    runtime_call,
)
from enginebench.errors import EngineBenchError
from enginebench.plan import build_plan, load_config
from enginebench.quality import verdict
from enginebench.workflow import REPO, planned_jobs, snakemake

QWEN = REPO / "config" / "qwen2.5-7b-trtllm.yaml"
CALIBRATION = {"size": 4, "max_seq_length": 64}
TINY = {
    "models": {"tiny": {"source": {"kind": "local", "path": "?"}, "baseline": "fp32", "reference": "fp32",
                        "chat_template": False,
                        "variants": {"fp32": {"backend": "torch", "dtype": "float32"},
                                     "fp8-kv-fp8": {"backend": "trtllm", "qformat": "fp8", "kv_cache_dtype": "fp8",
                                                    "calibration": CALIBRATION},
                                     "int8-sq-kv-int8": {"backend": "trtllm", "qformat": "int8_sq",
                                                         "kv_cache_dtype": "int8", "calibration": CALIBRATION},
                                     "int4-awq": {"backend": "trtllm", "qformat": "int4_awq",
                                                  "calibration": CALIBRATION}}}},
    "prompts": ["The function returns", "A module is"],
    "samples": {"max_new_tokens": 8},
    "quality": {"windows": 2, "window_tokens": 64},
}


@pytest.fixture(scope="module")
def tiny(tiny_model, tmp_path_factory):
    """Every stage's CLI on the tiny model with three quantized TensorRT-LLM variants."""
    root = tmp_path_factory.mktemp("trtllm")
    return root, run_pipeline(TINY, tiny_model, root)


@pytest.mark.parametrize("variant, algo, kv, weight_dtype, tensors", [
    ("fp8-kv-fp8", "FP8", "FP8", "torch.float8_e4m3fn",
     ["attention.qkv.weights_scaling_factor", "attention.qkv.activation_scaling_factor",
      "attention.kv_cache_scaling_factor"]),
    ("int8-sq-kv-int8", "W8A8_SQ_PER_CHANNEL", "INT8", "torch.int8",
     ["attention.qkv.prequant_scaling_factor", "attention.qkv.weights_scaling_factor",
      "attention.kv_cache_scaling_factor"]),
    ("int4-awq", "W4A16_AWQ", None, "torch.int8",  # two 4-bit weights per int8
     ["attention.qkv.prequant_scaling_factor", "attention.qkv.weights_scaling_factor"]),
])
def test_stage1_writes_a_trtllm_checkpoint_through_modelopt(tiny, variant, algo, kv, weight_dtype, tensors):
    root, plan = tiny
    out = root / paths.CHECKPOINT.format(model="tiny", checkpoint=plan.engines[("tiny", variant)].checkpoint)
    manifest = json.loads((out / paths.MANIFEST).read_text())
    assert manifest["status"] == "ok", manifest.get("reason")
    assert manifest["modelopt"]["decoder_type"] == "llama" and manifest["modelopt"]["calibration_samples"] == 4
    assert manifest["timings"]["calibrate_s"] > 0 and manifest["versions"]["nvidia-modelopt"]
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "LlamaForCausalLM" and config["dtype"] == "float16"
    assert config["quantization"]["quant_algo"] == algo
    assert config["quantization"]["kv_cache_quant_algo"] == kv
    with safe_open(out / "rank0.safetensors", "pt") as f:
        names = set(f.keys())
        assert str(f.get_tensor("transformer.layers.0.attention.qkv.weight").dtype) == weight_dtype
    for layer in range(2):
        for tensor in tensors:
            assert f"transformer.layers.{layer}.{tensor}" in names
    if kv is None:
        assert not any("kv_cache_scaling_factor" in n for n in names)


def test_engine_stage_is_not_attempted_without_tensorrt_llm(tiny):
    root, plan = tiny
    ckpt = root / paths.CHECKPOINT.format(model="tiny", checkpoint=plan.engines[("tiny", "int4-awq")].checkpoint)
    out = root / paths.ENGINE.format(model="tiny", variant="int4-awq")
    manifest = json.loads((out / paths.MANIFEST).read_text())
    assert manifest["status"] == "unavailable"
    assert "not built on this host: TensorRT-LLM not available (no trtllm-build on PATH" in manifest["reason"]
    assert manifest["would_run"].startswith(f"trtllm-build --checkpoint_dir {ckpt} --output_dir {out}")
    assert [p.name for p in out.iterdir()] == [paths.MANIFEST]  # no engine files, nothing that looks built
    quality = json.loads((root / paths.QUALITY.format(model="tiny", variant="int4-awq")).read_text())
    assert quality["status"] == "unavailable" and verdict(quality, {})["verdict"] == "NOT RUN"


def test_fake_quant_prediction_is_measured_like_an_engine(tiny):
    """The quality stage on ModelOpt's fake-quantized model (weights, activations, KV cache in FP8)."""
    root, _ = tiny
    record = json.loads((root / paths.PREDICTED.format(model="tiny", variant="fp8-kv-fp8")).read_text())
    assert record["status"] == "ok" and record["predicted_by"] == "ModelOpt fake-quant"
    assert record["stand_in"]["modelopt_config"] == "FP8_DEFAULT_CFG"
    m = record["metrics"]
    assert 1.0 <= m["perplexity_ratio"] < 1.2 and 0 < m["kl_divergence_mean"] < 0.5 and m["top1_agreement"] > 0.8
    assert len(record["samples"]) == 2 and "greedy_agreement" in m and "repeated_ngram_share" in m


def test_report_lists_what_was_not_built_and_the_predicted_rows(tiny):
    root, _ = tiny
    report = (root / paths.REPORT).read_text()
    assert "| int4-awq (trtllm) | int4_awq | float16 | not built on this host (see Not measured) | — | NOT RUN" \
        in report
    assert "| fp8-kv-fp8: predicted by ModelOpt fake-quant | fp8 | fp8 | — (a stand-in for quality only" in report
    assert "- `int4-awq` (unavailable): engine: not built on this host: TensorRT-LLM not available" in report
    assert "  would have run, engine: `trtllm-build --checkpoint_dir " in report
    assert "Predicted before any GPU time" in report
    recommendation = report.split("## Recommendation")[1]
    assert "`fp32`" in recommendation and "int4-awq" not in recommendation  # not built: neither pick nor failure


def qwen_plan():
    return build_plan(load_config(QWEN))


def test_qwen_build_commands_match_the_trtllm_build_cli():
    plan = qwen_plan()
    ckpt, eng = Path("CKPT"), Path("results/qwen2.5-7b/engines/ENGINE")
    cache = "results/qwen2.5-7b/engines/trtllm-timing.cache"
    def expected(gemm_plugin, fp8_context_fmha=None):
        return [
            "trtllm-build", "--checkpoint_dir", "CKPT",  # BUILD:60-64 type=str
            "--output_dir", str(eng),  # BUILD:84-90 type=str
            # PLUGIN:116-123 choices auto,float16,float32,bfloat16,int32,fp8,nvfp4,disable (default: off)
            "--gemm_plugin", gemm_plugin,
            "--max_batch_size", "4",  # BUILD:92-96 type=int
            "--max_seq_len", "4096",  # BUILD:101-108 type=int (alias --max_decoder_seq_len)
            # PLUGIN:256-260 enable|disable
            *(["--use_fp8_context_fmha", fp8_context_fmha] if fp8_context_fmha else []),
            "--gather_context_logits",  # BUILD:245-248 store_true; the LLM API returns context logits only then
            "--input_timing_cache", cache, "--output_timing_cache", cache,  # BUILD:162-172 type=str
        ]

    # No --kv_cache_dtype: trtllm-build has none; the KV-cache type is the checkpoint's kv_cache_quant_algo.
    for variant, want in {"trtllm-fp16": expected("float16"), "trtllm-fp8": expected("auto", "enable"),
                          "trtllm-fp8-kv-fp8": expected("auto", "enable"), "trtllm-int4-awq": expected("auto")}.items():
        assert build_command(ckpt, eng, plan.engines[("qwen2.5-7b", variant)].settings) == want, variant


def test_qwen_stage1_and_runtime_invocations():
    plan = qwen_plan()
    fp16 = plan.engines[("qwen2.5-7b", "trtllm-fp16")].settings
    # QWEN:20 --model_dir (required), :137-140 --output_dir, :33-41 --dtype choices, :21-24 --tp_size,
    # :141-145 --workers
    assert convert_command(Path("HF"), Path("CKPT"), fp16, "Qwen2ForCausalLM") == [
        "python", str(EXAMPLES / "models/core/qwen/convert_checkpoint.py"), "--model_dir", "HF",
        "--output_dir", "CKPT", "--dtype", "float16", "--tp_size", "1", "--workers", "1"]
    # QUANT:97-104 --calib_size 512 / --calib_max_seq_length 512, :82-87 --seed 1234, :109 --awq_block_size 128
    fp8_kv = plan.engines[("qwen2.5-7b", "trtllm-fp8-kv-fp8")].settings
    assert fp8_kv["calibration"] == {"size": 1024, "max_seq_length": 512, "batch_size": 1, "seed": 1234, "text": None}
    assert (fp8_kv["qformat"], fp8_kv["kv_cache_dtype"]) == ("fp8", "fp8")  # QUANT:66-81, :110-113 choices
    assert plan.engines[("qwen2.5-7b", "trtllm-int4-awq")].settings["awq_block_size"] == 128
    # LLMAPI: __init__(self, model, tokenizer=None, ...); an engine folder as model loads it with TrtLlmArgs
    assert runtime_call(Path("ENGINE"), Path("HF")) == \
        "tensorrt_llm._tensorrt_engine.LLM(model='ENGINE', tokenizer='HF')"
    assert fp16["container"] == CONTAINER == "nvcr.io/nvidia/tensorrt-llm/release:1.2.1"


def test_container_and_compute_capability_define_trtllm_engines(monkeypatch):
    from enginebench.backends import trtllm_backend

    plan = qwen_plan()
    spec = plan.engine_spec("qwen2.5-7b", "trtllm-fp8")
    assert spec["settings"]["container"] == CONTAINER and "host" in spec
    monkeypatch.setattr(trtllm_backend, "gpu_compute_capability", lambda: (8, 9))
    assert qwen_plan().engine_spec("qwen2.5-7b", "trtllm-fp8")["host"] == {"compute_capability": "8.9"}
    assert "host" not in plan.engine_spec("qwen2.5-7b", "llamacpp-f16")


@pytest.mark.parametrize("capability, ok", [((9, 0), True), ((8, 9), True), ((8, 6), False), (None, False)])
def test_fp8_needs_compute_capability_8_9(capability, ok):
    settings = qwen_plan().engines[("qwen2.5-7b", "trtllm-fp8")].settings
    if ok:
        check_fp8_hardware(settings, capability)
    else:
        with pytest.raises(EngineBenchError, match="compute capability >= 8.9"):
            check_fp8_hardware(settings, capability)
    check_fp8_hardware(qwen_plan().engines[("qwen2.5-7b", "trtllm-fp16")].settings, capability)  # no FP8: fine


def test_fp8_on_an_ampere_host_with_tensorrt_llm_stops_before_any_job(monkeypatch):
    from enginebench.backends import trtllm_backend

    monkeypatch.setattr(trtllm_backend.TrtllmBackend, "availability", lambda self, stage, settings: None)
    monkeypatch.setattr(trtllm_backend, "gpu_compute_capability", lambda: (8, 0))
    with pytest.raises(EngineBenchError, match="trtllm-fp8: .* GPU reports 8.0"):
        qwen_plan().check_host()


def test_kv_cache_dtype_needs_a_quantized_format():
    config = load_config(QWEN)
    config["models"]["qwen2.5-7b"]["variants"]["trtllm-fp16"]["kv_cache_dtype"] = "fp8"
    with pytest.raises(EngineBenchError, match="trtllm-fp16: kv_cache_dtype needs a quantized qformat"):
        build_plan(config)


def test_qwen_dry_run_plans_the_whole_experiment_in_the_container_on_a_gpu(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "apptainer").write_text("#!/bin/sh\necho 'apptainer version 1.3.0'\n")
    (fake / "apptainer").chmod(0o755)
    env_path = os.environ["PATH"]
    os.environ["PATH"] = f"{fake}{os.pathsep}{env_path}"
    try:
        done = snakemake(REPO, "-n", "--sdm", "apptainer", config=QWEN)
    finally:
        os.environ["PATH"] = env_path
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout + done.stderr
    assert f"Singularity image docker://{CONTAINER} will be pulled" in out
    jobs = planned_jobs(done.stdout)
    trtllm = ("trtllm-fp16", "trtllm-fp8", "trtllm-fp8-kv-fp8", "trtllm-int4-awq")
    assert {o for r, o in jobs if r == "trtllm_engine"} == {f"results/qwen2.5-7b/engines/{v}" for v in trtllm}
    assert {o for r, o in jobs if r == "engine"} == {
        f"results/qwen2.5-7b/engines/{v}" for v in ("torch-bf16", "llamacpp-f16", "llamacpp-q4_k_m")}
    assert {o for r, o in jobs if r == "predicted_quality"} == {
        f"results/qwen2.5-7b/predicted/{v}.json" for v in ("trtllm-fp8", "trtllm-fp8-kv-fp8", "trtllm-int4-awq")}
    assert not any("gemma3-270m" in o for _, o in jobs)  # --configfile replaces the default config
    blocks = out.split("rule ")
    engine_blocks = [b for b in blocks if b.startswith("trtllm_engine:")]
    assert len(engine_blocks) == 4 and all("gpu=1" in b for b in engine_blocks)
    bench_blocks = [b for b in blocks if b.startswith("bench:")]
    assert sum("gpu=1" in b for b in bench_blocks) == 4 and sum("gpu=0" in b for b in bench_blocks) == 3


class _StreamedRequest:
    """What LLMAPI:331-344 generate_async(..., streaming=True) returns, as RESULT has it: an async
    iterator (RESULT:795-803) yielding the same object after each response, whose
    outputs[0].token_ids grows and token_ids_diff holds the tokens of the latest response
    (RESULT:152-153, :352-357). A stand-in for the API's shape only: TensorRT-LLM cannot run here."""

    def __init__(self, responses):
        self.responses = list(responses)
        self.outputs = [type("CompletionOutput", (), {"token_ids": [], "token_ids_diff": []})()]

    def __aiter__(self):
        return self

    async def __anext__(self):
        import asyncio

        if not self.responses:
            raise StopAsyncIteration
        await asyncio.sleep(0)  # let the other requests' tasks run, as the executor's queues do
        new = self.responses.pop(0)
        self.outputs[0].token_ids_diff = new
        self.outputs[0].token_ids = self.outputs[0].token_ids + new
        return self


def test_streaming_consumes_every_request_concurrently_and_times_each_token():
    import asyncio

    responses = {(1, 2): [[10], [11, 12]], (3,): [[20], [21], [22]]}  # one response carries two tokens
    calls = []

    class FakeLLM:
        def generate_async(self, ids, sampling_params, streaming):
            asyncio.get_running_loop()  # RESULT:282-287: must be called inside the loop
            assert streaming is True and sampling_params == "params"
            return _StreamedRequest(responses[tuple(ids)])

    engine = TrtllmEngine.__new__(TrtllmEngine)  # no LLM to load here; only the consuming loop is tested
    engine.llm = FakeLLM()
    rows = engine._stream([[1, 2], [3]], "params", calls.append)
    assert rows == [[10, 11, 12], [20, 21, 22]]
    assert sorted(calls) == [0, 0, 0, 1, 1, 1]  # one call per token, whatever the response size
    assert calls[:2] == [0, 1]  # both streams advance together, not one request after the other
