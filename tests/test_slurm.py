"""The tiny-model workflow on a real SLURM cluster through `--profile profiles/slurm`.

Skipped where no cluster answers; `.ci/run` starts a single-node one (.ci/slurm-cluster.sh) with a
fake GPU and sets ENGINEBENCH_SLURM=1, which turns the skip into a failure.
"""

import re
import subprocess
import time
from pathlib import Path

import pytest
import reportparse
from slurmflow import cluster_or_skip, log_heads, measuring_cpus, running_job, slurm_job, start_on_slurm, submitted_jobs
from snakemake_run import planned_jobs, snakemake, write_config

from enginebench.io import read_json
from enginebench.scheduler import bandwidth_source


def gpu_jobs(dry_run: str) -> dict[str, int]:
    """The jobs of a dry run whose rule declares `resources: gpu=N` (TensorRT-LLM's convert, engine
    builds and runtime stages: 1; the runtime stages of a variant with parallel.gpus: N), named as the SLURM
    plugin comments them (rule_wildcards_values), with N. Without TensorRT-LLM, or without N GPUs, on the
    node they record that they did not run there, which is what CI checks."""
    found = {}
    for block in re.split(r"^(?=\s*(?:local)?rule \w+:)", dry_run, flags=re.M):
        rule = re.search(r"^\s*rule (\w+):", block, flags=re.M)
        asked = re.search(r"^\s*resources: .*\bgpu=(\d+)\b", block, flags=re.M)
        if rule and asked and int(asked.group(1)) > 0:
            wildcards = re.search(r"^\s*wildcards: (.*)$", block, flags=re.M)
            values = [kv.split("=", 1)[1] for kv in wildcards.group(1).split(", ")] if wildcards else []
            name = "_wildcards_".join([rule.group(1), "_".join(values)]) if values else rule.group(1)
            found[name] = int(asked.group(1))
    return found

RUN_TIMEOUT_S = 240


@pytest.fixture(scope="session")  # session: decided before the session-scoped tiny model is built
def cluster():
    return cluster_or_skip()


def slurm_config(model_path) -> dict:
    return {
        "models": {"tiny": {"source": {"kind": "local", "path": str(model_path)}, "baseline": "fp32",
                            "reference": "fp32", "chat_template": False,
                            "variants": {"fp32": {"backend": "torch", "dtype": "float32"},
                                         "llama-q8_0": {"backend": "llamacpp", "quantization": "Q8_0"},
                                         # split over the node's 2 (fake) GPUs: sbatch --gpus=2 (issue 25)
                                         "llama-q8_0-2gpu": {"backend": "llamacpp", "quantization": "Q8_0",
                                                             "parallel": {"gpus": 2}},
                                         "trtllm-fp16": {"backend": "trtllm"}}}},
        "prompts": ["The function returns", "A module is"],
        "bench": {"max_new_tokens": 4, "warmup": 1, "repetitions": 2, "load_repetitions": 1, "batch_sizes": [1, 2]},
        "samples": {"max_new_tokens": 4},
        "quality": {"windows": 2, "window_tokens": 64},
    }


def finish(run: subprocess.Popen) -> tuple[int, str]:
    try:
        output, _ = run.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        run.kill()  # the profile's own controller; its jobs are cancelled with it or by the CI teardown
        output, _ = run.communicate()
        pytest.fail(f"the SLURM run did not finish in {RUN_TIMEOUT_S} s:\n{output[-3000:]}")
    return run.returncode, output


def engine_rows(report: str) -> dict[str, str]:
    """The quality table of a report: engine -> quality verdict."""
    return {engine: row["Verdict"] for engine, row in reportparse.table(report, "Which engines keep quality").items()}


def test_workflow_runs_as_slurm_jobs_and_reports_as_a_local_run(cluster, tmp_path, tiny_model):
    config = write_config(tmp_path, slurm_config(tiny_model))
    slurm_dir, local_dir = tmp_path / "slurm", tmp_path / "local"
    dry = snakemake(slurm_dir, "-n", config=config)
    expected = sorted(job for job in planned_jobs(dry.stdout) if job[0] != "all")  # `all` is a local target
    gpu = gpu_jobs(dry.stdout)
    assert {name.split("_wildcards_")[0] for name in gpu} >= {"trtllm_engine", "trtllm_bench", "trtllm_quality"}
    assert {name: n for name, n in gpu.items() if n > 1} == {  # the preflight: the GPUs the widest bench asks
        "preflight": 2, **{f"{stage}_wildcards_tiny_llama-q8_0-2gpu": 2 for stage in ("bench", "samples", "quality")}}
    run = start_on_slurm(slurm_dir, config, cluster)
    local = snakemake(local_dir, config=config)  # meanwhile, the same workflow without SLURM
    returncode, output = finish(run)
    assert returncode == 0, output[-4000:]
    assert local.returncode == 0, local.stderr[-3000:]

    # Every job was submitted with sbatch, once.
    submitted = submitted_jobs(output)
    assert len(submitted) == len(expected) and len(set(submitted.values())) == len(expected)
    # Every job's log names the SLURM job that wrote it and the node it ran on; one log per job.
    heads = log_heads(slurm_dir)
    assert len(heads) == len(expected) and None not in heads.values(), heads
    assert {job for _, job in heads.values()} == set(submitted)
    assert {node for node, _ in heads.values()} == {cluster.node}
    # ...and SLURM ran each of them: completed, with its rule's threads as CPUs and, for a GPU rule, a GPU.
    jobs = {job_id: slurm_job(job_id) for job_id in submitted}
    assert {j["JobState"] for j in jobs.values()} == {"COMPLETED"}
    by_rule = {j["Comment"].removeprefix("rule_"): j for j in jobs.values()}
    for name, job in by_rule.items():
        tres = job.get("TresPerJob") or ""  # sbatch --gpus=N
        assert (tres == f"gres:gpu:{gpu[name]}") if name in gpu else not tres.startswith("gres:gpu"), (name, tres)
    assert set(gpu) <= set(by_rule)
    # threads: every core of a local run, capped by the profile's max-threads (ENGINEBENCH_SLURM_CPUS)
    assert by_rule["bench_wildcards_tiny_fp32"]["NumCPUs"] == str(measuring_cpus(cluster))
    assert by_rule["engine_wildcards_tiny_llama-q8_0"]["NumCPUs"] == "1"  # no threads: one CPU

    # Results carry their node and SLURM job: the host record is the preflight job's node, a bench the bench job's.
    def job_of(log: str) -> dict:
        return {"node": cluster.node, "slurm_job_id": heads[Path("results/logs") / log][1]}

    results = slurm_dir / "results"
    preflight_job = job_of("preflight.log")
    assert read_json(results / "host/preflight.json")["environment"]["job"] == preflight_job
    for v in ("fp32", "llama-q8_0"):
        assert read_json(results / f"tiny/bench/{v}.json")["environment"]["job"] == job_of(f"tiny/bench/{v}.log")
        assert read_json(results / f"tiny/engines/{v}/manifest.json")["job"] == job_of(f"tiny/engine/{v}.log")
        assert read_json(results / f"tiny/quality/{v}.json")["job"] == job_of(f"tiny/quality/{v}.log")
    # ...and the report says which node measured what.
    report = (results / "report.md").read_text()
    assert f"- Node: {cluster.node} (SLURM job {preflight_job['slurm_job_id']})" in report
    host_row = next(line for line in report.splitlines() if line.startswith("| Host |"))
    for v in ("fp32", "llama-q8_0"):
        assert f"{v}: {cluster.node} (SLURM job {job_of(f'tiny/bench/{v}.log')['slurm_job_id']})" in host_row
    # Same node: the roofline divides the preflight's bandwidth into every bench, with no note.
    preflight_env = read_json(results / "host/preflight.json")["environment"]
    for v in ("fp32", "llama-q8_0"):
        bench_env = read_json(results / f"tiny/bench/{v}.json")["environment"]
        assert bandwidth_source(bench_env, preflight_env) == (True, None)
    share = reportparse.column(report, "How fast: one request at a time", "% of bound")
    assert all(cell[0].isdigit() for cell in share.values()), share  # ...and the report shows the share

    # The same engines with the same verdicts as the local run.
    local_report = (local_dir / "results/report.md").read_text()
    assert engine_rows(report) == engine_rows(local_report) and list(engine_rows(report)) == ["fp32", "llama-q8_0"]
    verdicts = [{k: e[k] for k in ("variant", "kind", "verdict")} for e in
                read_json(slurm_dir / "results/quality-gate.json")["engines"]]
    assert verdicts == [{k: e[k] for k in ("variant", "kind", "verdict")} for e in
                        read_json(local_dir / "results/quality-gate.json")["engines"]]
    assert {v["variant"]: v["verdict"] for v in verdicts} == {"fp32": "PASS", "llama-q8_0": "PASS",
                                                              "llama-q8_0-2gpu": "NOT RUN", "trtllm-fp16": "NOT RUN"}


def test_cancelled_job_leaves_no_output_and_the_rerun_rebuilds_it(cluster, tmp_path, tiny_model):
    config = write_config(tmp_path, slurm_config(tiny_model))
    target = "results/tiny/engines/llama-q8_0"
    checkpoint = tmp_path / "results/tiny/checkpoints/gguf-f16"
    run = start_on_slurm(tmp_path, config, cluster, target)
    # Wait until the GGUF conversion is under way on the node (its temporary folder exists), then cancel it.
    deadline, cancelled = time.monotonic() + RUN_TIMEOUT_S, None
    while cancelled is None and time.monotonic() < deadline and run.poll() is None:
        job = running_job("rule_checkpoint_wildcards_tiny_gguf-f16")
        if job and list(checkpoint.parent.glob(".gguf-f16.tmp-*")):
            subprocess.run(["scancel", job], check=True)
            cancelled = job
        time.sleep(0.1)
    assert cancelled, "the checkpoint job was never seen running"
    returncode, output = finish(run)
    assert returncode != 0
    assert f"SLURM-job '{cancelled}' failed, SLURM status is: 'CANCELLED'" in output
    # Killed mid-write: its temporary folder is left behind, under a name no rule reads, and nothing
    # at the output path; the engine that would have read it never started.
    assert list(checkpoint.parent.glob(".gguf-f16.tmp-*"))
    assert not checkpoint.exists()
    assert not (tmp_path / target).exists() and not (tmp_path / "results/logs/tiny/engine").exists()
    snapshot_job = read_json(tmp_path / "results/tiny/snapshot/manifest.json")["job"]["slurm_job_id"]

    rerun = start_on_slurm(tmp_path, config, cluster, target)
    returncode, output = finish(rerun)
    assert returncode == 0, output[-4000:]
    # The rerun resumed from what had finished (the snapshot) and rebuilt the cancelled checkpoint.
    submitted = submitted_jobs(output)
    assert read_json(tmp_path / "results/tiny/snapshot/manifest.json")["job"]["slurm_job_id"] == snapshot_job
    assert snapshot_job not in submitted and len(submitted) == 2
    rebuilt = read_json(checkpoint / "manifest.json")
    assert rebuilt["status"] == "ok" and rebuilt["job"]["slurm_job_id"] in submitted
    assert rebuilt["job"]["slurm_job_id"] != cancelled
    assert (checkpoint / rebuilt["file"]).stat().st_size == rebuilt["artifact_bytes"]  # the whole GGUF
    # The engine was quantized from it: by a job submitted after the rebuilt checkpoint's had finished.
    engine = read_json(tmp_path / target / "manifest.json")
    assert engine["status"] == "ok" and engine["job"]["slurm_job_id"] in submitted
    assert int(engine["job"]["slurm_job_id"]) > int(rebuilt["job"]["slurm_job_id"])
