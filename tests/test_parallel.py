"""Past one GPU (issue 25), on the CPU: a torch engine split over 2 processes (transformers' tensor-parallel
plan over gloo, each stage started as 2 torchrun ranks) answers as one process, token for token, through the
pipeline; a variant's `parallel.gpus` is what its runtime jobs ask (`resources: gpu=N`, the SLURM profile's
--gpus=N: test_slurm); a plan that asks more GPUs than a host with GPUs has stops with one sentence; a host
without any GPU records a llama.cpp split engine as not run here."""

from __future__ import annotations

import copy
import os
import re

import pytest
from snakemake_run import snakemake, write_config

from enginebench import stages
from enginebench.backends.llamacpp_backend import LlamaCppBackend, server_split_flags, split_across_gpus
from enginebench.bench import at_batch
from enginebench.errors import EngineBenchError
from enginebench.io import read_json
from enginebench.plan import build_plan, validate_config

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


def test_the_parallel_setting_is_validated_per_backend_and_is_part_of_the_engine():
    config = parallel_config()
    validate_config(config)
    plan = build_plan(copy.deepcopy(config))
    assert config["models"]["tiny"]["variants"]["fp32-tp2"]["parallel"] == {"gpus": 2, "mode": "tensor"}
    assert (plan.gpus("tiny", "fp32-tp2"), plan.gpus("tiny", "llama-f16-row2"), plan.gpus("tiny", "fp32")) == (2, 2, 0)
    # a split torch engine has no server: its serve job asks no GPU; llama-server splits as the engine does
    assert (plan.gpus("tiny", "fp32-tp2", "serve"), plan.gpus("tiny", "llama-f16-row2", "serve")) == (0, 2)
    assert plan.engine_spec("tiny", "fp32-tp2")["settings"]["parallel"] == {"gpus": 2, "mode": "tensor"}
    for variant, mode in (("fp32-tp2", "row"), ("llama-f16-row2", "tensor")):
        bad = copy.deepcopy(parallel_config())
        bad["models"]["tiny"]["variants"][variant]["parallel"]["mode"] = mode
        with pytest.raises(EngineBenchError, match=rf"variants.{variant}.parallel.mode: '{mode}' is not one of"):
            validate_config(bad)
    bad = parallel_config()
    bad["models"]["tiny"]["variants"]["fp32-tp2"]["compile"] = True
    validate_config(bad)
    with pytest.raises(EngineBenchError, match=r"fp32-tp2.*compile: true with parallel"):
        build_plan(bad)
    bad = parallel_config()
    bad["models"]["tiny"]["reference"] = "fp32-tp2"
    validate_config(bad)
    with pytest.raises(EngineBenchError, match=r"'fp32-tp2' is spread over 2 GPUs \(parallel\); the reference runs in "
                                               r"one process"):
        build_plan(bad)


def test_runtime_jobs_ask_for_the_variants_gpus_in_the_dry_run(monkeypatch, tmp_path):
    fake_gpus(monkeypatch, tmp_path, 0)  # planned on a host without GPU, whatever this one has
    done = snakemake(tmp_path, "-n", config=write_config(tmp_path, parallel_config()))
    assert done.returncode == 0, done.stderr
    asked = {}
    for block in re.split(r"^(?=(?:local)?rule \w+:)", done.stdout, flags=re.M):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        wildcards = re.search(r"^\s*wildcards: .*variant=([\w.-]+)", block, flags=re.M)
        gpu = re.search(r"^\s*resources: .*\bgpu=(\d+)", block, flags=re.M)
        jobs = re.search(r"^\s*resources: .*\bgpu_jobs=(\d+)", block, flags=re.M)
        if rule and wildcards and gpu:
            asked[(rule.group(1), wildcards.group(1))] = (int(gpu.group(1)), int(jobs.group(1)))
    # gpu_jobs: 1 for a job that uses GPUs (--resources gpu_jobs=1 runs them one at a time on a local host)
    for stage in ("bench", "samples", "quality"):
        assert asked[(stage, "fp32-tp2")] == (2, 1) and asked[(stage, "llama-f16-row2")] == (2, 1)
        assert asked[(stage, "fp32")] == (0, 0)


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
    monkeypatch.setenv("SLURM_JOB_ID", "7")  # a SLURM job's node may show only the job's GPUs: not checked there
    assert snakemake(tmp_path, "-n", config=write_config(tmp_path, parallel_config())).returncode == 0
    monkeypatch.delenv("SLURM_JOB_ID")
    fake_gpus(monkeypatch, tmp_path / "two", 2)  # enough: planned
    assert snakemake(tmp_path, "-n", config=write_config(tmp_path, parallel_config())).returncode == 0


def test_a_gpu_resource_below_the_widest_job_stops_the_plan_before_any_job(monkeypatch, tmp_path):
    """profiles/trtllm sets --resources gpu=1; Snakemake would refuse a job asking 2 only at its turn."""
    fake_gpus(monkeypatch, tmp_path, 0)
    config = write_config(tmp_path, parallel_config())
    done = snakemake(tmp_path, "-n", "--resources", "gpu=1", config=config)
    assert done.returncode != 0
    assert ("enginebench: models.tiny.variants.fp32-tp2 runs on 2 GPUs, but --resources gpu=1 lets a job use 1: "
            "raise it to this host's GPU count (at least --resources gpu=2)") in done.stdout + done.stderr
    assert snakemake(tmp_path, "-n", "--resources", "gpu=2", config=config).returncode == 0


def test_a_host_without_gpus_records_a_gpu_split_engine_as_not_run_here(monkeypatch):
    """llama.cpp's split needs the GPUs; a torch engine's ranks are CPU processes over gloo there."""
    from enginebench import environment

    monkeypatch.setattr(environment, "gpus", lambda: [])  # whatever this host has
    config = parallel_config()
    validate_config(config)
    plan = build_plan(config)
    problem = stages.parallel_problem(plan.engine_spec("tiny", "llama-f16-row2"))
    assert problem == {"status": "unavailable",
                       "reason": "not run on this host: parallel.gpus asks for 2 GPUs; this host has none"}
    assert stages.parallel_problem(plan.engine_spec("tiny", "fp32-tp2")) is None
    assert stages.parallel_problem(plan.engine_spec("tiny", "fp32")) is None


def test_the_preflight_measures_an_interconnect_only_where_an_engine_is_split():
    from enginebench.preflight import interconnect

    config = parallel_config()
    validate_config(config)
    assert build_plan(config).widest_split() == 2
    single = parallel_config()
    for variant in ("fp32-tp2", "llama-f16-row2"):
        del single["models"]["tiny"]["variants"][variant]
    validate_config(single)
    assert build_plan(single).widest_split() == 1
    assert interconnect(1, 0) is None and interconnect(1, 8) is None
    assert interconnect(2, 1) == {"reason": "one GPU here: nothing to all-reduce among"}


@pytest.mark.parametrize("name, asked", [
    ("qwen2.5-72b-multigpu", {"torch-bf16-tp2": 2, "torch-bf16-tp4": 4, "torch-bf16-tp8": 8, "trtllm-bf16-tp2": 2,
                              "trtllm-bf16-tp4": 4, "llamacpp-f16-layer2": 2, "llamacpp-f16-row2": 2,
                              "llamacpp-f16-layer4": 4, "llamacpp-q4_k_m": 0, "llamacpp-q4_k_m-layer2": 2}),
    ("qwen2.5-7b-multigpu", {"torch-bf16": 0, "torch-bf16-tp2": 2, "llamacpp-f16": 0, "llamacpp-f16-layer2": 2,
                             "llamacpp-f16-row2": 2}),
])
def test_the_multigpu_configs_plan_each_engine_at_its_gpu_count(repo, name, asked):
    """llama.cpp and torch engines of one device ask no GPU (they run on the CPU too); the preflight asks the most
    a bench does and measures the all-reduce among the widest split."""
    from enginebench.plan import load_config

    plan = build_plan(load_config(repo / "config" / f"{name}.yaml"))
    assert {variant: plan.gpus(model, variant) for model, variant in plan.engines} == asked
    assert plan.widest_split() == plan.preflight_gpus() == max(asked.values())


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


@pytest.mark.slow
def test_a_tensor_parallel_torch_engine_runs_through_the_pipeline_as_two_ranks(tiny_model, tmp_path):
    """On a host without GPU the ranks are 2 CPU processes over gloo: each runtime stage starts itself under
    torchrun; rank 0 writes. The split engine answers as the single one, passes the quality gate, and its
    bench counts the other rank as its own (not as another process making the host busy)."""
    from enginebench import paths
    from enginebench import results as records

    config = parallel_config()
    config["models"]["tiny"]["source"]["path"] = str(tiny_model)
    config["models"]["tiny"]["chat_template"] = False
    config["models"]["tiny"]["variants"].pop("llama-f16-row2")
    config["samples"]["max_new_tokens"] = 24
    config["bench"].update(batch_sizes=[1, 2], context_depths=[0, 64])
    done = snakemake(tmp_path, config=write_config(tmp_path, config))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    read = {stage: {v: records.read(tmp_path / pattern.format(model="tiny", variant=v), stage)
                    for v in ("fp32", "fp32-tp2")}
            for stage, pattern in (("samples", paths.SAMPLES), ("bench", paths.BENCH), ("quality", paths.QUALITY))}
    assert [s["output_ids"] for s in read["samples"]["fp32-tp2"]["samples"]] == \
           [s["output_ids"] for s in read["samples"]["fp32"]["samples"]]
    bench = read["bench"]["fp32-tp2"]
    assert bench["status"] == "ok", bench.get("reason")
    split = bench["engine_info"]["tensor_parallel"]
    assert split["ranks"] == 2 and split["collectives"] == "gloo"
    assert 0.45 < split["parameters_on_rank_0"] / split["parameters"] < 0.6
    assert "tensor_parallel" not in read["bench"]["fp32"]["engine_info"]
    # the other rank is the engine's own, not another process: on 2 cores it alone would be ~50 % of the CPU
    # (an idle host shows a few %; 30 % leaves room for noise and still catches it)
    assert bench["host_load"]["other_share"] < 0.3, bench["host_load"]
    assert bench["metrics"]["energy"]["reason"].startswith("not measured: the engine spans several GPUs")
    assert [p.get("what") for p in bench["raw"]["load_probes"]] == ["this rank's first load (torchrun started it)"]
    assert read["quality"]["fp32-tp2"]["status"] == "ok"
    gate = read_json(tmp_path / "results/quality-gate.json")["engines"]
    assert {e["variant"]: e["verdict"] for e in gate} == {"fp32": "PASS", "fp32-tp2": "PASS"}
    for stage in ("bench", "samples", "quality"):  # one job, started again as 2 ranks; the serve stage never is
        log = (tmp_path / f"results/logs/tiny/{stage}/fp32-tp2.log").read_text()
        assert "tensor parallel over 2 processes" in log

    # what one rank holds: half the weights (the largest rank's), and the KV cache summed over the ranks is
    # the single engine's, each rank holding its heads' half
    single = read["bench"]["fp32"]
    assert 0.45 < split["largest_rank_weight_bytes"] / single["engine_info"]["weight_bytes"] < 0.6
    for depth, one in zip(bench["metrics"]["depths"], single["metrics"]["depths"], strict=True):
        assert depth["kv_cache"]["bytes"] == one["kv_cache"]["bytes"]
        assert depth["kv_cache"]["largest_rank_bytes"] * 2 == one["kv_cache"]["bytes"]
    # the interconnect of the widest split, measured by the preflight: gloo among 2 CPU processes here
    link = records.read(tmp_path / paths.PREFLIGHT, "preflight")["interconnect"]
    assert (link["ranks"], link["collectives"], link["n"]) == (2, "gloo", 3) and 0 < link["min"] <= link["max"]
    # the report's scaling section: the split engine against the single one, at each batch size
    report = (tmp_path / "results/report.md").read_text()
    assert f"- Interconnect: {link['max']:.1f} GB/s, the best of n=3" in report
    assert "all-reduce of 32 MiB among 2 CPU processes (gloo)" in report
    section = report[report.index("### Past one GPU: how each engine scales"):report.index("### What each costs")]
    assert "`torch`, tensor parallel, against `fp32` (1 CPU process):" in section
    for size in (1, 2):
        speedup = (at_batch(bench["metrics"], size)["tokens_per_s"]["median"]
                   / at_batch(single["metrics"], size)["tokens_per_s"]["median"])
        assert re.search(rf"^\| fp32-tp2 \| 2 \(CPU processes\) \| {size} \| [^|]+ \| {speedup:.2f}× \| "
                         rf"{speedup / 2:.0%} \|$", section, flags=re.M), section
    kv = bench["metrics"]["depths"][-1]["kv_cache"]["largest_rank_bytes"] / bench["metrics"]["depths"][-1][
        "context_tokens"]
    assert re.search(rf"^\| fp32-tp2 \| 2 \(CPU processes\) \| {split['largest_rank_weight_bytes'] / 1e6:.2f} "
                     rf"\(the largest rank's shard\) \| {kv * 1000 / 1e6:.2f} \(the largest rank's cache\) \|",
                     section, flags=re.M), section


RANK_SCRIPT = """
import os, pathlib, sys, time
sys.path.insert(0, {scripts!r})
from enginebench import hostload
before = hostload.sample()
started = time.process_time()
while time.process_time() - started < 1.0:  # each rank burns 1 s of CPU
    pass
done = pathlib.Path({flag!r})
if os.environ["RANK"] == "1":
    done.touch()
    time.sleep(2)  # alive while rank 0 counts
else:
    deadline = time.monotonic() + 60
    while not done.exists() and time.monotonic() < deadline:  # the other rank has burnt its second
        time.sleep(0.05)
    print("OWN", hostload.sample()["own"] - before["own"])
"""


def test_the_ranks_of_one_engine_count_as_its_own_cpu_time_not_as_other_processes(tmp_path):
    """A rank's host-load sample counts every rank torchrun started (a split engine's bench must not call the
    host busy because of its own other rank)."""
    import subprocess
    import sys

    from enginebench.tensor_parallel import SCRIPTS

    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT.format(scripts=str(SCRIPTS), flag=str(tmp_path / "rank-1-done")))
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    own = float(next(line for line in done.stdout.splitlines() if line.startswith("OWN")).split()[1])
    assert own >= 1.8  # both ranks' burns (one rank alone: ~1.0)
