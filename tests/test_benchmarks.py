"""The benchmark scripts' own logic (they print figures; the figures are not asserted)."""

import json

import bench_default_pipeline
import bench_gpu_peers
import bench_harness_overhead
import bench_pipeline
from snakemake_run import job_times

from enginebench.plan import build_plan, validate_config
from enginebench.stats import summarize


def test_generated_config_has_the_requested_engines():
    config = bench_pipeline.generated_config(100)
    validate_config(config)
    plan = build_plan(config)
    assert len(plan.all_engines()) == 100
    assert len(plan.all_checkpoints()) == 50  # one torch and one shared GGUF checkpoint per model


def test_harness_overhead_ratio(tmp_path, capsys):
    result = {"metrics": {"decode_tokens_per_s_single": summarize([97.0, 99.0, 98.0], "tokens/s"),
                          "decode_tokens_per_s_single_engine": summarize([100.0, 100.0, 100.0], "tokens/s")}}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(result))
    assert bench_harness_overhead.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "ratio 0.980" in out and "0.970, 0.990, 0.980" in out and "meets 0.97" in out


def test_harness_overhead_without_counters(tmp_path, capsys):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"metrics": {"decode_tokens_per_s_single": summarize([1.0], "tokens/s")}}))
    assert bench_harness_overhead.main([str(path)]) == 1
    assert "no bench result with an engine counter" in capsys.readouterr().out


def fake_bench(folder, name, backend, settings, rates, device, gpus=()):
    sweep = [{"batch_size": size, "tokens_per_s": summarize(values, "tokens/s")} for size, values in rates.items()]
    result = {"status": "ok", "spec": {"backend": backend, "settings": settings}, "metrics": {"sweep": sweep},
              "engine_info": {"device": device}, "environment": {"gpus": list(gpus)}}
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(result))


def test_gpu_peers_ratios(tmp_path, capsys):
    gpu, cpu, h200 = tmp_path / "gpu", tmp_path / "cpu", [{"name": "NVIDIA H200"}]
    fake_bench(gpu, "llamacpp-f16", "llamacpp", {}, {1: [400.0, 410.0]}, "cuda", h200)
    fake_bench(cpu, "llamacpp-f16", "llamacpp", {}, {1: [80.0, 84.0]}, "cpu")
    fake_bench(gpu, "torch-bf16", "torch", {"dtype": "bfloat16", "compile": False}, {1: [30.0], 16: [400.0]}, "cuda:0")
    fake_bench(gpu, "torch-bf16-compiled", "torch", {"dtype": "bfloat16", "compile": True},
               {1: [120.0], 16: [1000.0]}, "cuda:0")
    assert bench_gpu_peers.main(["--gpu", str(gpu), "--cpu", str(cpu)]) == 0
    out = capsys.readouterr().out
    assert "llamacpp-f16: 405.0 tok/s (400.0-410.0, n=2) on cuda [NVIDIA H200] vs 82.0 tok/s" in out
    assert "-> 4.94x" in out
    assert "single-stream: 120.0 tok/s" in out and "-> 4.00x (meets the 3x goal)" in out
    assert "batch 16: 1000.0 tok/s" in out and "-> 2.50x" in out


SNAKEMAKE_LOG = """\
[Mon Nov 30 14:33:41 2026]
localrule preflight:
    output: results/host/preflight.json
    jobid: 2
    threads: 2
[Mon Nov 30 14:33:44 2026]
Finished jobid: 2 (Rule: preflight)
[Mon Nov 30 14:33:44 2026]
localrule bench:
    jobid: 23
[Mon Nov 30 14:33:44 2026]
rule engine:
    jobid: 9
[Mon Nov 30 14:33:46 2026]
Finished jobid: 9 (Rule: engine)
[Mon Nov 30 14:36:45 2026]
Finished jobid: 23 (Rule: bench)
"""


def test_default_pipeline_benchmark_reads_job_times_from_the_log():
    jobs = job_times(SNAKEMAKE_LOG)
    assert [(j["rule"], (j["end"] - j["start"]).total_seconds()) for j in jobs] == [
        ("preflight", 3.0), ("engine", 2.0), ("bench", 181.0)]
    assert bench_default_pipeline.per_rule(jobs + jobs[2:]) == [("bench", 2, 362.0), ("preflight", 1, 3.0),
                                                              ("engine", 1, 2.0)]
    assert bench_default_pipeline.minutes(362.0) == "6 min 02.0 s"
