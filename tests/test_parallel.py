"""Past one GPU (issue 25), on the CPU: a torch engine split over 2 processes (transformers' tensor-parallel
plan over gloo) answers as one process, token for token; a variant's `parallel.gpus` is what its runtime jobs
ask (`resources: gpu=N`, the SLURM profile's --gpus=N: test_slurm); a plan that asks more GPUs than a host
with GPUs has stops with one sentence; a host without any GPU records the engine as not run here."""

from __future__ import annotations

import copy
import os
import re

import pytest
from snakemake_run import snakemake, write_config

from enginebench import stages
from enginebench.backends.llamacpp_backend import LlamaCppBackend, server_split_flags, split_across_gpus
from enginebench.backends.torch_backend import TorchBackend
from enginebench.errors import EngineBenchError
from enginebench.plan import build_plan, validate_config
from enginebench.tensor_parallel import run as tensor_parallel_run

TWO = {"gpus": 2}


def parallel_config() -> dict:
    return {
        "models": {"tiny": {"source": {"kind": "local", "path": "/nonexistent"}, "baseline": "fp32",
                            "reference": "fp32",
                            "variants": {"fp32": {"backend": "torch", "dtype": "float32"},
                                         "fp32-tp2": {"backend": "torch", "dtype": "float32", "parallel": TWO},
                                         "llama-f16-row2": {"backend": "llamacpp", "quantization": "F16",
                                                            "parallel": {"gpus": 2, "mode": "row"}}}}},
        "prompts": ["The function returns", "A module is"],
        "bench": {"max_new_tokens": 4, "warmup": 1, "repetitions": 1, "load_repetitions": 1, "batch_sizes": [1]},
        "samples": {"max_new_tokens": 8},
        "quality": {"windows": 2, "window_tokens": 64},
    }


@pytest.mark.slow
def test_two_torch_processes_over_gloo_answer_as_one_token_for_token(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    prompts = [tokenizer(p).input_ids for p in ("The function returns", "A module is a file containing", "x = 1")]
    settings = {"backend": "torch", "dtype": "float32", "compile": False, "max_cache_len": 512}
    one = TorchBackend().load(tiny_model, None, None, settings, threads=2, trust_remote_code=False)
    single = [one.generate([ids], 24, [tokenizer.eos_token_id], fixed_length=False)[0] for ids in prompts]
    split = tensor_parallel_run(tiny_model, {**settings, "parallel": {"gpus": 2, "mode": "tensor"}}, prompts, 24,
                                [tokenizer.eos_token_id], tmp_path)
    assert split["world_size"] == 2 and split["device"] == "cpu"
    # the weights really were split: rank 0 holds about half of them (norms are replicated)
    assert 0.45 < split["parameters_on_rank_0"] / split["parameters"] < 0.6
    assert split["outputs"] == single and all(len(row) > 0 for row in single)


def test_the_parallel_setting_is_validated_per_backend_and_is_part_of_the_engine():
    config = parallel_config()
    validate_config(config)
    plan = build_plan(copy.deepcopy(config))
    assert config["models"]["tiny"]["variants"]["fp32-tp2"]["parallel"] == {"gpus": 2, "mode": "tensor"}
    assert (plan.gpus("tiny", "fp32-tp2"), plan.gpus("tiny", "llama-f16-row2"), plan.gpus("tiny", "fp32")) == (2, 2, 0)
    assert plan.engine_spec("tiny", "fp32-tp2")["settings"]["parallel"] == {"gpus": 2, "mode": "tensor"}
    for variant, mode in (("fp32-tp2", "row"), ("llama-f16-row2", "tensor")):
        bad = copy.deepcopy(parallel_config())
        bad["models"]["tiny"]["variants"][variant]["parallel"]["mode"] = mode
        with pytest.raises(EngineBenchError, match=rf"variants.{variant}.parallel.mode: '{mode}' is not one of"):
            validate_config(bad)
    bad = parallel_config()
    bad["models"]["tiny"]["reference"] = "fp32-tp2"
    validate_config(bad)
    with pytest.raises(EngineBenchError, match=r"'fp32-tp2' is spread over 2 GPUs \(parallel\); the reference runs in "
                                               r"one process"):
        build_plan(bad)


def test_runtime_jobs_ask_for_the_variants_gpus_in_the_dry_run(tmp_path):
    done = snakemake(tmp_path, "-n", config=write_config(tmp_path, parallel_config()))
    assert done.returncode == 0, done.stderr
    asked = {}
    for block in re.split(r"^(?=(?:local)?rule \w+:)", done.stdout, flags=re.M):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        wildcards = re.search(r"^\s*wildcards: .*variant=([\w.-]+)", block, flags=re.M)
        gpu = re.search(r"^\s*resources: .*\bgpu=(\d+)", block, flags=re.M)
        if rule and wildcards and gpu:
            asked[(rule.group(1), wildcards.group(1))] = int(gpu.group(1))
    for stage in ("bench", "samples", "quality"):
        assert asked[(stage, "fp32-tp2")] == 2 and asked[(stage, "llama-f16-row2")] == 2
        assert asked[(stage, "fp32")] == 0


def fake_gpus(monkeypatch, tmp_path, count: int) -> None:
    """An `nvidia-smi` on PATH that lists `count` H200s (as --query-gpu=... --format=csv,noheader,nounits)."""
    stub = tmp_path / "bin" / "nvidia-smi"
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\n" + "".join("echo 'NVIDIA H200, 143771, 9.0, 570.86.15'\n" for _ in range(count)))
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub.parent}:{os.environ['PATH']}")


def test_a_plan_asking_more_gpus_than_the_host_has_stops_with_one_sentence(monkeypatch, tmp_path):
    fake_gpus(monkeypatch, tmp_path, 1)
    done = snakemake(tmp_path, "-n", config=write_config(tmp_path, parallel_config()))
    output = done.stdout + done.stderr  # Snakemake reports workflow errors on stdout
    assert done.returncode != 0
    assert "enginebench: models.tiny.variants.fp32-tp2.parallel.gpus asks for 2 GPUs; this host has 1 " \
           "(nvidia-smi): lower it or run on a larger host" in output
    assert "Traceback" not in output and "rule snapshot" not in output  # before any job
    fake_gpus(monkeypatch, tmp_path / "two", 2)  # enough: planned
    assert snakemake(tmp_path, "-n", config=write_config(tmp_path, parallel_config())).returncode == 0


def test_a_host_without_gpus_records_a_split_engine_as_not_run_here():
    config = parallel_config()
    validate_config(config)
    plan = build_plan(config)
    for variant in ("fp32-tp2", "llama-f16-row2"):
        problem = stages.parallel_problem(plan.engine_spec("tiny", variant))
        assert problem == {"status": "unavailable",
                           "reason": "not run on this host: parallel.gpus asks for 2 GPUs; this host has none"}
    assert stages.parallel_problem(plan.engine_spec("tiny", "fp32")) is None


def test_llamacpp_splits_its_layers_or_rows_over_the_gpus():
    import llama_cpp as L

    params = L.llama_model_default_params()
    keep = split_across_gpus(L, params, {"gpus": 2, "mode": "row"})
    assert params.split_mode == L.LLAMA_SPLIT_MODE_ROW and params.main_gpu == 0
    assert [params.tensor_split[i] for i in range(3)] == [1.0, 1.0, 0.0] and keep is not None
    assert split_across_gpus(L, L.llama_model_default_params(), None) is None
    settings = {"n_ctx": 512, "kv_cache": "f16", "flash_attn": True, "offload_kqv": True,
                "parallel": {"gpus": 2, "mode": "layer"}}
    cmd = LlamaCppBackend().server_command("m.gguf", settings, port=1, slots=1, threads=1, offload=-1)
    assert server_split_flags(settings["parallel"]) == ["--split-mode", "layer", "--tensor-split", "1,1",
                                                        "--main-gpu", "0"]
    assert cmd[cmd.index("--split-mode"):cmd.index("--main-gpu") + 2] == server_split_flags(settings["parallel"])
