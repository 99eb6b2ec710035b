"""DAG tests (dry runs, schema rejections, lint) and the end-to-end run on the tiny model."""

import copy

import pytest
import recorded
import report as report_cli
import reportparse
from snakemake_run import REPO, planned_jobs, snakemake, write_config
from tinymodel import unsupported_copy

from enginebench.figures import FIGURES
from enginebench.plan import build_plan, spec_json, validate_config


def tiny_config(model_path, unsupported_path=None) -> dict:
    config = {
        "models": {"tiny": {"source": {"kind": "local", "path": str(model_path)}, "baseline": "fp32",
                            "reference": "fp32", "chat_template": False,
                            "variants": {"fp32": {"backend": "torch", "dtype": "float32"},
                                         "bf16": {"backend": "torch", "dtype": "bfloat16"},
                                         "llama-f16": {"backend": "llamacpp", "quantization": "F16"},
                                         "llama-q8_0": {"backend": "llamacpp", "quantization": "Q8_0"},
                                         "llama-q4_k_m-kv-q8_0": {"backend": "llamacpp", "quantization": "Q4_K_M",
                                                                  "kv_cache": "q8_0"}}}},
        "prompts": ["The function returns", "A module is"],
        "bench": {"max_new_tokens": 4, "warmup": 1, "repetitions": 2, "load_repetitions": 1},
        "samples": {"max_new_tokens": 4},
        "quality": {"windows": 2, "window_tokens": 64},
    }
    if unsupported_path is not None:
        config["models"]["unsupported"] = {
            "source": {"kind": "local", "path": str(unsupported_path)}, "baseline": "fp32", "reference": "fp32",
            "variants": {"fp32": {"backend": "torch", "dtype": "float32"},
                         "llama-f16": {"backend": "llamacpp", "quantization": "F16"}}}
    return config


def test_dry_run_plans_every_stage(tmp_path):
    config = write_config(tmp_path, tiny_config("/nonexistent/tiny"))
    done = snakemake(tmp_path, "-n", config=config)
    assert done.returncode == 0, done.stderr
    jobs = planned_jobs(done.stdout)
    rules = [r for r, _ in jobs]
    assert {r: rules.count(r) for r in set(rules)} == {
        "preflight": 1, "snapshot": 1, "checkpoint": 2, "engine": 5, "bench": 5, "samples": 5, "reference": 1,
        "quality": 5, "figures": 1, "report": 1, "gate": 1, "all": 1}
    # one checkpoint per backend, each shared by its engines
    assert ("checkpoint", "results/tiny/checkpoints/torch") in jobs
    assert ("checkpoint", "results/tiny/checkpoints/gguf-f16") in jobs
    assert ("bench", "results/tiny/bench/llama-q4_k_m-kv-q8_0.json") in jobs
    assert not (tmp_path / "results").exists()


def test_a_run_that_cannot_quantize_with_tensorrt_llm_prepares_no_calibration_data(tmp_path):
    """Issue 23's calibration rule feeds quantize.py only where it can run (profiles/trtllm's containers, or
    TensorRT-LLM on the host: tests/test_trtllm.py's dry run); the default CPU run, whose TensorRT-LLM
    checkpoint jobs only record that they were not built, plans no calibration job."""
    config = tiny_config("/nonexistent/tiny")
    config["models"]["tiny"]["variants"]["trt-fp8"] = {"backend": "trtllm", "qformat": "fp8"}
    done = snakemake(tmp_path, "-n", config=write_config(tmp_path, config))
    assert done.returncode == 0, done.stderr
    rules = [r for r, _ in planned_jobs(done.stdout)]
    assert "trtllm_checkpoint" in rules and "trtllm_calibration" not in rules


@pytest.mark.parametrize("mutate, words", [
    (lambda c: c["bench"].update(repetitons=3), ["config key bench", "repetitons"]),
    (lambda c: c["models"]["tiny"]["variants"]["bf16"].update(dtype="bf16"), ["models.tiny.variants.bf16.dtype"]),
    (lambda c: c["models"]["tiny"].update(baseline="fp16"), ["models.tiny.baseline", "'fp16'"]),
    (lambda c: c["models"]["tiny"].pop("reference"), ["models.tiny.reference: not set"]),
    (lambda c: c["quality"].update(gate={"max_kl": 0.1}), ["config key quality.gate", "max_kl"]),
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


TINY_FIGURES = ", ".join(f"results/tiny/figures/{name}.png" for name in FIGURES)


def test_end_to_end_tiny_model_then_noop_then_one_stale_chain(tmp_path, tiny_model):
    config = tiny_config(tiny_model, unsupported_copy(tiny_model, tmp_path / "unsupported-model"))
    path = write_config(tmp_path, config)
    done = snakemake(tmp_path, config=path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "results" / "report.md").read_text()
    quality = reportparse.table(report, "Which engines keep quality")
    assert list(quality) == ["fp32", "bf16", "llama-f16", "llama-q8_0", "llama-q4_k_m-kv-q8_0"]  # engines are rows
    assert max(reportparse.widths(report)) <= 10
    validate_config(config)
    plan = build_plan(config)
    found = recorded.findings_of(tmp_path, plan, "tiny")
    parity = {v: (r["bench"]["tokenizer_parity"]["checked"], r["bench"]["tokenizer_parity"].get("equal"))
              for v, r in found["results"].items()}
    assert parity == {"fp32": (False, None), "bf16": (False, None), **dict.fromkeys(
        ("llama-f16", "llama-q8_0", "llama-q4_k_m-kv-q8_0"), (True, True))}
    assert "Decode tokens/s, engine's counter" in reportparse.table(report, "How fast: one request at a time")["fp32"]
    for result in found["results"].values():  # depth 0 is the first prompt alone: the sweep's runs of it, not rerun
        bench = result["bench"]
        assert bench["raw"]["depths"][0] == {
            "depth": 0, "runs": [rep["batches"][0] for rep in bench["raw"]["sweep"][0]["repetitions"]]}
        assert bench["metrics"]["depths"][0]["ttft_s"]["n"] == 2  # the 2 repetitions, no runs of its own
        # load_repetitions 1: the bench's own load, cold (its process had imported no engine's modules)
        assert [p["what"] for p in bench["raw"]["load_probes"]] == ["this bench's own process, its first load"]
    # Adding a variant adds rows, never a column: the same results rendered for the config without one.
    fewer = copy.deepcopy(config)
    del fewer["models"]["tiny"]["variants"]["llama-f16"]
    validate_config(fewer)
    assert report_cli.main(["--layout", spec_json(build_plan(fewer).report_layout()), "--root", str(tmp_path),
                            "--out", str(tmp_path / "fewer.md")]) == 0
    for heading in ("Which engines keep quality", "What each costs", *reportparse.SPEED_HEADINGS):
        rows, rows_fewer = (reportparse.tables(reportparse.section(text, heading))[0]
                            for text in (report, (tmp_path / "fewer.md").read_text()))
        assert list(rows[0]) == list(rows_fewer[0]), heading  # the same columns
        added = {r["Engine"] for r in rows} - {r["Engine"] for r in rows_fewer}
        assert added <= {"llama-f16"} and len(rows) - len(rows_fewer) == len([r for r in rows if r["Engine"] ==
                                                                               "llama-f16"]), heading
    # The unsupported architecture fails in its own chain; the rest of the report renders and says why.
    unsupported = recorded.findings_of(tmp_path, plan, "unsupported")["results"]["llama-f16"]["status"]
    assert unsupported[0] == "failed" and unsupported[1].startswith("checkpoint: convert_hf_to_gguf.py failed:")
    assert unsupported[1].splitlines()[0] in report
    assert "NoSuchForCausalLM" in (tmp_path / "results/logs/unsupported/checkpoint/gguf-f16.log").read_text()
    assert (tmp_path / "results/logs/tiny/bench/bf16.log").read_text().strip()

    again = snakemake(tmp_path, "-n", config=path)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr

    html = snakemake(tmp_path, "--report", "results/report.html", config=path)
    assert html.returncode == 0, html.stderr[-3000:]
    page = (tmp_path / "results/report.html").read_text()
    for annotated in ("quality_vs_speed.png", "latency_vs_throughput.png", "report.md", "preflight.json",
                      "llama-q8_0.json", "quality gate verdicts"):
        assert annotated in page, annotated

    # a precision, a file type, the compiled PyTorch path and where llama.cpp's layers run (issue 12)
    for variant, key, value in (("bf16", "dtype", "float16"), ("llama-q8_0", "quantization", "Q4_0"),
                                ("bf16", "compile", True), ("llama-q8_0", "n_gpu_layers", 0)):
        changed = copy.deepcopy(config)
        changed["models"]["tiny"]["variants"][variant][key] = value
        dry = snakemake(tmp_path, "-n", config=write_config(tmp_path, changed))
        assert dry.returncode == 0, dry.stderr
        assert sorted(planned_jobs(dry.stdout)) == sorted([
            ("engine", f"results/tiny/engines/{variant}"), ("bench", f"results/tiny/bench/{variant}.json"),
            ("samples", f"results/tiny/samples/{variant}.json"), ("quality", f"results/tiny/quality/{variant}.json"),
            ("figures", TINY_FIGURES), ("report", "results/report.md"), ("gate", "results/quality-gate.json"),
            ("all", ""),
        ])

    # A stricter gate with fail_on_gate: no engine is re-measured, the figures (coloured by verdict) and
    # the report are re-drawn, the run fails.
    strict = copy.deepcopy(config)
    strict["quality"].update(fail_on_gate=True, gate={"min_top1_agreement": 1.0})
    path = write_config(tmp_path, strict)
    dry = snakemake(tmp_path, "-n", config=path)
    assert sorted(planned_jobs(dry.stdout)) == [("all", ""), ("figures", TINY_FIGURES),
                                                ("figures", TINY_FIGURES.replace("tiny", "unsupported")),
                                                ("gate", "results/quality-gate.json"), ("report", "results/report.md")]
    failed = snakemake(tmp_path, config=path)
    assert failed.returncode != 0
    assert "quality gate failed" in (tmp_path / "results/logs/gate.log").read_text()
    assert not (tmp_path / "results/quality-gate.json").exists()
    validate_config(strict)
    found = recorded.findings_of(tmp_path, build_plan(strict), "tiny")
    failing = {v for v, verdict in recorded.verdicts(found).items() if verdict == "FAIL"}
    assert failing and not failing & found["shown"]
    assert all(any("top-1 agreement" in reason for reason in found["results"][v]["verdict"]["reasons"])
               for v in failing)
    report = (tmp_path / "results" / "report.md").read_text()
    assert not failing & reportparse.speed_engines(report)
