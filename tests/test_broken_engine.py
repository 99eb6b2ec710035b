"""A broken engine is a verdict, not a crash: an engine whose float16 logits overflow to inf gets FAIL
with that reason, its speed figures are kept out of every speed table and the answer, and the report
renders with every other engine. The engines are real (PyTorch); "broken" is the torch engine loading
a copy of the snapshot whose output projection overflows float16 (tinymodel.overflow)."""

import json

import pytest
import recorded
import reportparse
from cliflow import run_pipeline
from tinymodel import overflow

from enginebench import paths
from enginebench.quality import EMPTY_SAMPLES, NON_FINITE
from enginebench.verdicts import gate, verdict

CONFIG = {
    "models": {"tiny": {"source": {"kind": "local", "path": "?"}, "baseline": "fp32", "reference": "fp32",
                        "chat_template": False,
                        "variants": {"fp32": {"backend": "torch", "dtype": "float32"},
                                     "fp16-overflow": {"backend": "torch", "dtype": "float16"},
                                     "llama-f16": {"backend": "llamacpp", "quantization": "F16"}}}},
    "prompts": ["The function returns", "A module is"],
    "bench": {"max_new_tokens": 4, "warmup": 1, "repetitions": 1, "load_repetitions": 1, "batch_sizes": [1, 2]},
    "samples": {"max_new_tokens": 8},
    "quality": {"windows": 2, "window_tokens": 64, "top_k": 16},
}


def run_with_an_overflowing_engine(config, tiny_model, root):
    """The pipeline of `config`, its fp16-overflow variant loading an overflowing copy of the snapshot."""
    plan = run_pipeline(config, tiny_model, root,
                        snapshot_of={"fp16-overflow": lambda snap: overflow(snap, root / "overflow-snapshot")})
    return root, plan


@pytest.fixture(scope="module")
def run(tiny_model, tmp_path_factory):
    return run_with_an_overflowing_engine(CONFIG, tiny_model, tmp_path_factory.mktemp("broken"))


def test_non_finite_logits_fail_with_that_reason(run):
    root, plan = run
    record = json.loads((root / paths.QUALITY.format(model="tiny", variant="fp16-overflow")).read_text())
    assert record["status"] == "ok"
    assert NON_FINITE in record["metrics"]["broken"]
    result = verdict(record, plan.config["quality"]["gate"])
    assert result["verdict"] == "FAIL" and result["reasons"][0] == NON_FINITE
    # no threshold lifts it
    assert verdict(record, {key: None for key in plan.config["quality"]["gate"]})["verdict"] == "FAIL"


def test_the_broken_engine_is_judged_avoided_and_never_ranked(run):
    """Decided from the records (enginebench.findings): FAIL for the broken engine, PASS for the others;
    its speed is in no speed table (both "How fast" tables, the sweep) nor in the picks; the answer
    says to avoid it, broken, with its reason. The report renders it that way (its reason under the
    quality table; its costs shown, marked)."""
    root, plan = run
    found = recorded.findings_of(root, plan, "tiny")
    assert recorded.verdicts(found) == {"fp32": "PASS", "fp16-overflow": "FAIL", "llama-f16": "PASS"}
    assert found["shown"] == {"fp32", "llama-f16"}
    assert all("fp16-overflow" not in ranking for ranking in recorded.picks(found))
    (avoid,) = found["answer"]["avoid"]
    assert avoid["variant"] == "fp16-overflow" and avoid["broken"] == NON_FINITE
    report = (root / paths.REPORT).read_text()
    assert reportparse.speed_engines(report) == found["shown"]
    assert NON_FINITE in reportparse.section(report, "Which engines keep quality")
    assert "fp16-overflow (FAIL)" in reportparse.table(report, "What each costs")


def test_empty_samples_fail():
    result = gate({"broken": [EMPTY_SAMPLES], "greedy_agreement": 1.0}, {"min_greedy_agreement": 0.15})
    assert result["verdict"] == "FAIL" and result["reasons"] == [EMPTY_SAMPLES]


BROKEN_REFERENCE = {**CONFIG, "models": {"tiny": {
    **CONFIG["models"]["tiny"], "reference": "fp16-overflow",
    "variants": {k: v for k, v in CONFIG["models"]["tiny"]["variants"].items() if k != "llama-f16"}}}}


@pytest.fixture(scope="module")
def broken_reference(tiny_model, tmp_path_factory):
    return run_with_an_overflowing_engine(BROKEN_REFERENCE, tiny_model, tmp_path_factory.mktemp("broken-reference"))


def test_a_broken_reference_is_the_finding_not_a_crash(broken_reference):
    """The reference job records its non-finite logits (the pipeline goes on); every engine of the model,
    the reference's self-check included, gets NO REFERENCE with that reason, never PASS or FAIL; the
    gate fails on it; the report renders, its answer says so first and calls no winner."""
    from enginebench.verdicts import gate_summary

    root, plan = broken_reference
    reference = json.loads((root / paths.REFERENCE.format(model="tiny")).read_text())
    assert reference["status"] == "broken" and NON_FINITE in reference["reason"]
    thresholds = plan.config["quality"]["gate"]
    for variant in ("fp32", "fp16-overflow"):
        record = json.loads((root / paths.QUALITY.format(model="tiny", variant=variant)).read_text())
        result = verdict(record, thresholds)
        assert result["verdict"] == "NO REFERENCE" and "`fp16-overflow` is broken" in result["reasons"][0]
    summary = gate_summary(plan.gate_spec(), root)
    assert len(summary["failed"]) == 2 and all("NO REFERENCE" in f for f in summary["failed"])

    found = recorded.findings_of(root, plan, "tiny")
    assert found["answer"]["no_reference"] and NON_FINITE in found["answer"]["no_reference"][0]
    assert not found["answer"]["picks"] and not found["answer"]["avoid"]  # no engine blamed for the reference
    assert found["shown"] == set()
    report = (root / paths.REPORT).read_text()  # it renders, and says so before anything else
    assert NON_FINITE in reportparse.section(report, "Answer").strip().splitlines()[0]
    assert reportparse.speed_engines(report) == set()
