"""DAG tests (dry runs, schema rejections, lint) and the end-to-end run on the tiny model."""

import copy

import pytest

from enginebench.workflow import REPO, planned_jobs, snakemake, write_config


def tiny_config(model_path) -> dict:
    return {
        "models": {"tiny": {"source": {"kind": "local", "path": str(model_path)}, "baseline": "fp32",
                            "variants": {"fp32": {"backend": "torch", "dtype": "float32"},
                                         "bf16": {"backend": "torch", "dtype": "bfloat16"}}}},
        "prompts": ["The function returns", "A module is"],
        "bench": {"max_new_tokens": 4, "warmup": 1, "repetitions": 2, "load_repetitions": 1},
        "samples": {"max_new_tokens": 4},
    }


def test_dry_run_plans_every_stage(tmp_path):
    config = write_config(tmp_path, tiny_config("/nonexistent/tiny"))
    done = snakemake(tmp_path, "-n", config=config)
    assert done.returncode == 0, done.stderr
    jobs = planned_jobs(done.stdout)
    assert sorted(r for r, _ in jobs) == sorted(
        ["snapshot", "checkpoint", "engine", "engine", "bench", "bench", "samples", "samples", "report", "all"])
    assert ("checkpoint", "results/tiny/checkpoints/torch") in jobs  # one checkpoint shared by both engines
    assert ("bench", "results/tiny/bench/bf16.json") in jobs
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("mutate, words", [
    (lambda c: c["bench"].update(repetitons=3), ["config key bench", "repetitons"]),
    (lambda c: c["models"]["tiny"]["variants"]["bf16"].update(dtype="bf16"), ["models.tiny.variants.bf16.dtype"]),
    (lambda c: c["models"]["tiny"].update(baseline="fp16"), ["models.tiny.baseline", "'fp16'"]),
])
def test_bad_config_stops_before_any_job(tmp_path, mutate, words):
    config = tiny_config("/nonexistent/tiny")
    mutate(config)
    done = snakemake(tmp_path, "-n", config=write_config(tmp_path, config))
    output = done.stdout + done.stderr  # Snakemake reports workflow errors on stdout
    assert done.returncode != 0
    for word in words:
        assert word in output
    assert "rule snapshot" not in output


def test_lint_is_clean():
    done = snakemake(REPO, "--lint")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Congratulations" in done.stdout + done.stderr


def test_end_to_end_tiny_model_then_noop_then_one_stale_chain(tmp_path, tiny_model):
    config = tiny_config(tiny_model)
    path = write_config(tmp_path, config)
    done = snakemake(tmp_path, config=path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "results" / "report.md").read_text()
    assert "| Metric | fp32 (baseline) | bf16 | Δ bf16 vs fp32 |" in report
    assert (tmp_path / "results/logs/tiny/bench/bf16.log").read_text().strip()

    again = snakemake(tmp_path, "-n", config=path)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr

    changed = copy.deepcopy(config)
    changed["models"]["tiny"]["variants"]["bf16"]["dtype"] = "float16"
    dry = snakemake(tmp_path, "-n", config=write_config(tmp_path, changed))
    assert dry.returncode == 0, dry.stderr
    assert sorted(planned_jobs(dry.stdout)) == sorted([
        ("engine", "results/tiny/engines/bf16"), ("bench", "results/tiny/bench/bf16.json"),
        ("samples", "results/tiny/samples/bf16.json"), ("report", "results/report.md"), ("all", ""),
    ])
