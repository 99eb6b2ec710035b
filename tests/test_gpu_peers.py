"""GPU-native peers, checked on the CPU: which llama-cpp-python build setup picks, where llama.cpp
put the model (read back from its log), n_gpu_layers reaching the engine, and the compiled PyTorch
path (static KV cache + torch.compile) running for real on the tiny model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import setup_llamacpp

from enginebench import llamacpp_build
from enginebench.backends import get_backend
from enginebench.backends.llamacpp_backend import gpu_layers, placement
from enginebench.errors import EngineBenchError
from enginebench.prompts import PromptEncoder

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

# Lines as llama.cpp 0.3.36's vendored sources print them (src/llama-model.cpp load_tensors,
# src/llama-kv-cache.cpp), with the values of a CUDA run of the default model.
CUDA_LOG = [
    "load_tensors: offloading output layer to GPU\n",
    "load_tensors: offloading 17 repeating layers to GPU\n",
    "load_tensors: offloaded 19/19 layers to GPU\n",
    "load_tensors:        CUDA0 model buffer size =   511.92 MiB\n",
    "load_tensors:   CPU_Mapped model buffer size =   160.00 MiB\n",
    "llama_kv_cache:      CUDA0 KV buffer size =    72.00 MiB\n",
]


def fake_nvidia_smi(tmp_path, line):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\necho '{line}'\n")
    tool.chmod(0o755)
    return bin_dir


def test_setup_builds_for_cuda_when_told_or_when_a_gpu_is_listed(tmp_path, monkeypatch):
    assert llamacpp_build.decide("1", found=[])["flavour"] == "cuda"
    assert llamacpp_build.decide("0", found=[{"name": "H200", "compute_capability": [9, 0]}])["flavour"] == "cpu"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no nvidia-smi: this CPU host
    cpu = llamacpp_build.decide("auto")
    assert cpu["flavour"] == "cpu" and "GGML_CUDA" not in cpu["cmake_args"] and "no NVIDIA GPU" in cpu["reason"]
    bin_dir = fake_nvidia_smi(tmp_path, "NVIDIA H200, 143771, 9.0, 580.159.04")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    cuda = llamacpp_build.decide("auto")
    assert cuda["flavour"] == "cuda" and "NVIDIA H200" in cuda["reason"]
    assert "-DGGML_CUDA=on" in cuda["cmake_args"] and "-DCMAKE_CUDA_ARCHITECTURES=90" in cuda["cmake_args"]
    with pytest.raises(Exception, match="use 1"):
        llamacpp_build.decide("yes")


@pytest.fixture
def venv_with_llamacpp(tmp_path):
    """A venv folder whose python is this interpreter (which has llama-cpp-python installed)."""
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    python = tmp_path / "venv" / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return tmp_path / "venv"


def test_a_different_build_than_the_installed_one_is_rebuilt_without_the_wheel_cache(venv_with_llamacpp):
    import importlib.metadata

    version = importlib.metadata.version("llama_cpp_python")
    cpu, cuda = llamacpp_build.decide("0", found=[]), llamacpp_build.decide("1", found=[])
    assert llamacpp_build.plan_install(venv_with_llamacpp, version, cpu)["action"] == "record"  # pre-stamp setup
    stamp = llamacpp_build.stamp_path(venv_with_llamacpp)
    stamp.write_text(json.dumps({"version": version, "flavour": "cpu", "cmake_args": cpu["cmake_args"]}))
    assert llamacpp_build.plan_install(venv_with_llamacpp, version, cpu)["action"] == "none"
    plan = llamacpp_build.plan_install(venv_with_llamacpp, version, cuda)
    assert plan["action"] == "build" and plan["use_cache"] is False and "installed build is cpu" in plan["why"]
    assert llamacpp_build.plan_install(venv_with_llamacpp, "0.0.1", cpu)["action"] == "build"


def test_setup_cli_dry_run_says_what_it_would_build(venv_with_llamacpp, capsys):
    assert setup_llamacpp.main(["--venv", str(venv_with_llamacpp), "--version", "0.0.1", "--gpu", "1",
                                "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "cuda build (GPU=1)" in out and "-DGGML_CUDA=on" in out and "building (" in out
    assert not llamacpp_build.stamp_path(venv_with_llamacpp).exists()


def test_makefile_runs_the_build_choice_on_every_setup(repo):
    makefile = (repo / "Makefile").read_text()
    assert "setup: $(VENV)/.setup-done llamacpp" in makefile
    assert "scripts/setup_llamacpp.py --venv $(VENV) --version $(LLAMA_CPP_PYTHON) --gpu $(GPU)" in makefile


def test_placement_is_read_back_from_llama_cpps_log():
    cuda = placement(CUDA_LOG)
    assert cuda["device"] == "cuda" and (cuda["layers_on_gpu"], cuda["layers"]) == (19, 19)
    assert cuda["kv_buffer_bytes"] == {"CUDA0": 72 * 2**20}
    assert cuda["model_buffer_bytes"]["CUDA0"] == round(511.92 * 2**20)
    partial = placement([CUDA_LOG[2].replace("19/19", "7/19"), "llama_kv_cache:  CPU KV buffer size = 8.00 MiB\n"])
    assert partial["device"] == "cpu+cuda (7/19 layers on the GPU)"
    assert placement(["load_tensors:   CPU_Mapped model buffer size =   160.00 MiB\n"])["device"] == "cpu"
    assert gpu_layers({"n_gpu_layers": None}, supports_offload=True) == -1
    assert gpu_layers({"n_gpu_layers": None}, supports_offload=False) == 0
    assert gpu_layers({"n_gpu_layers": 5}, supports_offload=True) == 5


@pytest.fixture(scope="module")
def gguf_checkpoint(tiny_model, tmp_path_factory):
    from enginebench.stages import build_checkpoint

    out = tmp_path_factory.mktemp("gpu-peers") / "gguf-f16"
    assert build_checkpoint({"backend": "llamacpp", "settings": {"checkpoint_type": "f16"}}, tiny_model,
                            out)["status"] == "ok"
    return out


@pytest.mark.parametrize("n_gpu_layers", [None, 0])
def test_n_gpu_layers_reaches_the_engine_and_the_device_is_read_back(tiny_model, gguf_checkpoint, n_gpu_layers):
    settings = {"checkpoint_type": "f16", "quantization": "F16", "kv_cache": "f16", "flash_attn": True,
                "n_ctx": 512, "n_gpu_layers": n_gpu_layers, "offload_kqv": True}
    engine = get_backend("llamacpp").load(tiny_model, gguf_checkpoint, gguf_checkpoint.parent / "none", settings,
                                           threads=1, trust_remote_code=False)
    info = engine.info()
    assert info["supports_gpu_offload"] is False  # the CPU build CI installs
    assert info["n_gpu_layers"] == 0 and info["device"] == "cpu" and info["layers_on_gpu"] == 0
    assert list(info["kv_buffer_bytes"]) == ["CPU"] and info["kv_buffer_bytes"]["CPU"] > 0


def test_compiled_torch_engine_runs_for_real_and_matches_eager(tiny_model):
    backend = get_backend("torch")
    encoder = PromptEncoder(tiny_model, chat_template=False)
    batch = [encoder.encode("The function returns"), encoder.encode("A module is an object that")]
    outputs = {}
    for compile_ in (False, True):
        engine = backend.load(tiny_model, None, None, {"dtype": "float32", "compile": compile_, "max_cache_len": 64},
                              threads=2, trust_remote_code=False)
        assert engine.compiles is compile_
        streamed = []
        outputs[compile_] = [engine.generate(batch, 6, encoder.stop_ids, fixed_length=True, on_token=streamed.append)
                             for _ in range(2)]  # the second call reuses the compiled graph
        assert sorted(streamed) == [0] * 12 + [1] * 12
    info = engine.info()
    assert {k: info["compiled"][k] for k in ("mode", "cache_implementation", "max_cache_len")} == \
        {"mode": "default", "cache_implementation": "static", "max_cache_len": 64}
    assert info["compiled"]["batch_sizes_compiled"] == [2]
    assert "cuda_graphs" not in info["compiled"]  # recorded on a GPU only
    assert outputs[True] == outputs[False]
    # stopping at end-of-sequence, single-stream and batched, as the samples stage generates
    eager = backend.load(tiny_model, None, None, {"dtype": "float32", "compile": False}, threads=2,
                         trust_remote_code=False)
    for rows in (batch, batch[:1]):
        assert engine.generate(rows, 20, encoder.stop_ids, fixed_length=False) == \
            eager.generate(rows, 20, encoder.stop_ids, fixed_length=False)
    assert backend.describe({"dtype": "float32", "compile": True})["kv_cache"] == "float32, static"
    # A context past the static cache (a deep bench.context_depths entry) is refused before it runs:
    # on a GPU, writing past the cache is a device-side error that no later job in the process survives.
    deep = encoder.encode("The function returns " * 30)
    with pytest.raises(EngineBenchError, match=rf"{len(deep)} prompt tokens \+ 6 new ones do not fit the static "
                                               r"cache's max_cache_len 64"):
        engine.generate([deep], 6, encoder.stop_ids, fixed_length=True)
    assert engine.generate(batch, 6, encoder.stop_ids, fixed_length=True) == outputs[True][0]  # still sound


def test_compiled_engine_keeps_one_graph_per_batch_size_on_a_sliding_window_model(tiny_model, tmp_path):
    """A sliding-window layer of transformers' StaticCache keeps its position as a Python int, which the
    compiled step was specialised on: a new graph every token, then dynamo's recompile limit (Gemma 3,
    config/gpu.yaml). The tiny model as a Mistral with an 8-token window, 40 tokens, two batch sizes."""
    import json
    import shutil

    from torch._dynamo.utils import counters

    model = tmp_path / "sliding"
    shutil.copytree(tiny_model, model)
    config = json.loads((model / "config.json").read_text())
    config.update(architectures=["MistralForCausalLM"], model_type="mistral", sliding_window=8)
    (model / "config.json").write_text(json.dumps(config))
    backend = get_backend("torch")
    encoder = PromptEncoder(model, chat_template=False)
    batch = [encoder.encode("The function returns"), encoder.encode("A module is an object that")]
    engines = [backend.load(model, None, None, {"dtype": "float32", "compile": compile_, "max_cache_len": 96},
                            threads=2, trust_remote_code=False) for compile_ in (False, True)]
    assert type(engines[1].model).__name__ == "MistralForCausalLM"
    graphs = counters["stats"]["unique_graphs"]
    for rows in (batch, batch[:1]):
        eager, compiled = (e.generate(rows, 40, encoder.stop_ids, fixed_length=True) for e in engines)
        assert compiled == eager
    assert counters["stats"]["unique_graphs"] - graphs <= 2  # one per batch size, not one per token


def test_engine_specs_carry_the_new_options():
    from enginebench.plan import build_plan, spec_json, validate_config

    config = {"models": {"m": {"source": {"kind": "local", "path": "/x"}, "baseline": "eager", "reference": "eager",
                               "variants": {"eager": {"backend": "torch"},
                                            "compiled": {"backend": "torch", "compile": True},
                                            "gguf": {"backend": "llamacpp", "quantization": "F16"},
                                            "gguf-cpu": {"backend": "llamacpp", "quantization": "F16",
                                                         "n_gpu_layers": 0}}}},
              "prompts": ["p"]}
    validate_config(config)
    plan = build_plan(config)
    assert plan.engine_spec("m", "compiled")["settings"]["compile"] is True
    assert plan.engine_spec("m", "eager")["settings"]["compile"] is False
    assert plan.engine_spec("m", "gguf")["settings"]["n_gpu_layers"] is None
    assert plan.engine_spec("m", "gguf-cpu")["settings"]["n_gpu_layers"] == 0
    # one checkpoint (GGUF) for both llama.cpp engines: where layers run does not change the file
    assert plan.engine_spec("m", "gguf")["checkpoint"] == plan.engine_spec("m", "gguf-cpu")["checkpoint"]
    assert spec_json(plan.engine_spec("m", "gguf")) != spec_json(plan.engine_spec("m", "gguf-cpu"))


def test_engine_manifests_record_the_new_options(tiny_model, gguf_checkpoint, tmp_path):
    from enginebench.stages import build_checkpoint, build_engine

    torch_spec = {"backend": "torch", "checkpoint": "torch",
                  "settings": {"dtype": "float32", "compile": True, "max_cache_len": 64}}
    build_checkpoint({"backend": "torch", "settings": {}}, tiny_model, tmp_path / "ckpt")
    manifest = build_engine(torch_spec, tiny_model, tmp_path / "ckpt", tmp_path / "compiled")
    assert manifest["status"] == "ok" and manifest["settings"]["compile"] is True
    llama_spec = {"backend": "llamacpp", "checkpoint": "gguf-f16",
                  "settings": {"checkpoint_type": "f16", "quantization": "Q8_0", "kv_cache": "f16", "flash_attn": True,
                               "n_ctx": 512, "n_gpu_layers": 0, "offload_kqv": False}}
    manifest = build_engine(llama_spec, tiny_model, gguf_checkpoint, tmp_path / "q8_0")
    assert manifest["status"] == "ok" and manifest["settings"]["n_gpu_layers"] == 0
    on_disk = json.loads((tmp_path / "q8_0" / "manifest.json").read_text())
    assert on_disk["settings"]["offload_kqv"] is False


def _python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SCRIPTS)})


def test_a_gpu_llama_cpp_process_tokenizes_without_torch(tiny_model, tmp_path):
    """On the H200 a CUDA llama.cpp and torch could not share a process in either order: the guard
    makes `import torch` fail there, and the tokenizer (transformers) still works."""
    code = ("import sys\nfrom enginebench.backends.llamacpp_backend import _isolate_gpu_build\n"
            "_isolate_gpu_build(numpy_first=False)\n"
            "from enginebench.prompts import PromptEncoder\n"
            f"ids = PromptEncoder({str(tiny_model)!r}, chat_template=False).encode('The function returns')\n"
            "assert ids and sys.modules['torch'] is None, (ids, sys.modules.get('torch'))\n"
            "try:\n    import torch\nexcept ImportError:\n    print('torch blocked')\n")
    done = _python(code, tmp_path)
    assert done.returncode == 0 and "torch blocked" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize("first, cause", [("torch", "imported torch"), ("numpy", "before numpy")])
def test_a_gpu_llama_cpp_load_refuses_a_process_it_would_crash_in(tmp_path, first, cause):
    code = (f"import {first}\nfrom enginebench.backends.llamacpp_backend import _isolate_gpu_build\n"
            f"_isolate_gpu_build(numpy_first={first == 'numpy'})\n")
    done = _python(code, tmp_path)
    assert done.returncode != 0 and "EngineBenchError" in done.stderr and cause in done.stderr


def test_runtime_stages_import_neither_numpy_nor_torch_before_the_engine(tmp_path):
    """The bench, samples and quality CLIs load the engine before numpy (and the tokenizer's torch)."""
    code = ("import sys\n"
            "import enginebench.bench, enginebench.samples, enginebench.quality, enginebench.stages\n"
            "print(sorted(m for m in ('numpy', 'torch', 'transformers') if m in sys.modules))")
    done = _python(code, tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
