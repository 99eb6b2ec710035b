"""The quality stage on the tiny model: a sound engine passes, an engine with really damaged weights fails.

The engines are real (PyTorch and llama.cpp); "damaged" is the torch engine loading a copy of the
snapshot whose attention output weights are zeroed (tinymodel.damage).
"""

import json

import gate as gate_cli
import pytest
import quality as quality_cli
from cliflow import run_pipeline
from tinymodel import damage

from enginebench import paths
from enginebench.errors import EngineBenchError
from enginebench.plan import build_plan, spec_json, validate_config
from enginebench.verdicts import CHECKS, gate, verdict

CONFIG = {
    "models": {"tiny": {"source": {"kind": "local", "path": "?"}, "baseline": "fp32", "reference": "fp32",
                        "chat_template": False,
                        "variants": {"fp32": {"backend": "torch", "dtype": "float32"},
                                     "damaged": {"backend": "torch", "dtype": "float32"},
                                     "llama-f16": {"backend": "llamacpp", "quantization": "F16"}}}},
    "prompts": ["The function returns", "A module is", "If the value is", "Each class has"],
    "samples": {"max_new_tokens": 16},
    "quality": {"windows": 4, "window_tokens": 96, "top_k": 16},
}


@pytest.fixture(scope="module")
def run(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    plan = run_pipeline(CONFIG, tiny_model, root, bench=False,
                        snapshot_of={"damaged": lambda snap: damage(snap, root / "damaged-snapshot")})
    return root, plan


def quality(root, variant):
    return json.loads((root / paths.QUALITY.format(model="tiny", variant=variant)).read_text())


def test_reference_keeps_sorted_top_k_of_fixed_windows(run):
    root, _ = run
    ref = json.loads((root / paths.REFERENCE.format(model="tiny")).read_text())
    assert ref["status"] == "ok" and "pydoc_data/topics.py" in ref["eval_text"]
    assert len(ref["windows"]) == 4
    for window in ref["windows"]:
        assert len(window["ids"]) == 96 and window["ids"][0] == 1  # BOS, then 95 scored positions
        assert len(window["top_ids"]) == len(window["top_logprobs"]) == len(window["target_logprobs"]) == 95
        assert all(len(row) == 16 and row == sorted(row, reverse=True) for row in window["top_logprobs"])
        assert all(lp <= 0 for lp in window["target_logprobs"])
    starts = [w["ids"][1:4] for w in ref["windows"]]
    assert len({tuple(s) for s in starts}) == 4  # spread over the text, not the same window repeated
    assert [len(w["ids"]) for w in ref["long_windows"]] == [1024, 1024]  # quality.long_windows' defaults
    assert all(len(w["top_ids"]) == 1023 for w in ref["long_windows"])


def test_engine_identical_to_the_reference_passes(run):
    root, plan = run
    record = quality(root, "fp32")
    m = record["metrics"]
    assert record["is_reference"] is True
    assert m["kl_divergence_mean"] == pytest.approx(0, abs=1e-6) and m["top1_agreement"] == 1.0
    assert m["perplexity_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert m["greedy_agreement"] == 1.0 and m["first_divergence"] == [None] * 4
    assert m["perplexity"] < 200  # the trained tiny model, far below its 800-token vocabulary
    assert verdict(record, plan.config["quality"]["gate"])["verdict"] == "PASS"


def test_sound_llama_engine_passes(run):
    root, plan = run
    record = quality(root, "llama-f16")
    m = record["metrics"]
    assert m["perplexity_ratio"] == pytest.approx(1.0, abs=0.01)
    assert m["kl_divergence_mean"] < 0.01 and m["top1_agreement"] > 0.95
    windows = m["per_window"]  # one figure per window, of equal length: their mean is the whole's
    assert len(windows["top1_agreement"]) == plan.config["quality"]["windows"]
    assert sum(windows["top1_agreement"]) / len(windows["top1_agreement"]) == pytest.approx(m["top1_agreement"])
    depth = m["depth"]  # the long windows: early and late positions apart
    assert depth["window_tokens"] == 1024 and depth["late_from"] == 512 and depth["scored_tokens_late"] == 2 * 511
    assert depth["kl_divergence_late"] < 0.01 and depth["top1_agreement_late"] > 0.95
    assert verdict(record, plan.config["quality"]["gate"])["verdict"] == "PASS"


def test_damaged_weights_fail_every_metric(run):
    root, plan = run
    record = quality(root, "damaged")
    result = verdict(record, plan.config["quality"]["gate"])
    assert result["verdict"] == "FAIL"
    failed = {c["metric"] for c in result["checks"] if not c["passed"]}
    assert failed == {metric for metric, *_ in CHECKS.values()}
    assert len(result["reasons"]) == len(CHECKS)
    assert any(reason.startswith("perplexity ratio") and "> 1.05×" in reason for reason in result["reasons"])


def test_thresholds_are_read_from_config(run):
    root, plan = run
    record = quality(root, "damaged")
    lenient = {"max_perplexity_ratio": 1e6, "max_kl_divergence": 100.0, "min_top1_agreement": 0.0,
               "min_greedy_agreement": 0.0, "max_repetition_increase": 1.0}
    assert verdict(record, lenient)["verdict"] == "PASS"
    only_ppl = {**{key: None for key in lenient}, "max_perplexity_ratio": 1.5}
    result = verdict(record, only_ppl)
    assert [c["metric"] for c in result["checks"]] == ["perplexity_ratio"]
    assert result["reasons"] == [f"perplexity ratio {record['metrics']['perplexity_ratio']:.3g}× > 1.5×"]


def test_gate_cli_fails_the_run_only_when_asked(run, tmp_path, capsys):
    root, plan = run
    spec = spec_json(plan.gate_spec())
    out = tmp_path / "gate.json"
    assert gate_cli.main(["--spec", spec, "--root", str(root), "--out", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert [(e["variant"], e["verdict"]) for e in summary["engines"]] == [
        ("fp32", "PASS"), ("damaged", "FAIL"), ("llama-f16", "PASS")]
    out.unlink()
    assert gate_cli.main(["--spec", spec, "--root", str(root), "--fail-on-gate", "--out", str(out)]) == 1
    assert "quality gate failed for 1 engine(s)" in capsys.readouterr().err
    assert not out.exists()


def test_reference_without_a_result_gives_no_verdict(run, tmp_path):
    root, plan = run
    failed_ref = tmp_path / "reference.json"
    failed_ref.write_text(json.dumps({"stage": "reference", "spec": {}, "status": "failed",
                                      "reason": "engine: it broke"}))
    f = ["--snapshot", str(root / paths.SNAPSHOT.format(model="tiny")), "--checkpoint", "unused",
         "--engine", str(root / paths.ENGINE.format(model="tiny", variant="llama-f16"))]
    out = tmp_path / "quality.json"
    assert quality_cli.main(["--spec", spec_json(plan.quality_spec("tiny", "llama-f16")), *f,
                             "--samples", str(root / paths.SAMPLES.format(model="tiny", variant="llama-f16")),
                             "--reference", str(failed_ref), "--reference-samples",
                             str(root / paths.SAMPLES.format(model="tiny", variant="fp32")), "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["status"] == "failed"
    assert "reference 'fp32' has no result (reference: engine: it broke)" in record["reason"]
    assert verdict(record, plan.config["quality"]["gate"])["verdict"] == "NO VERDICT"


@pytest.mark.parametrize("patch, message", [
    ({}, "models.tiny.reference: not set, and no torch variant runs at the snapshot's precision"),
    ({"reference": "fp16"}, "models.tiny.reference: 'fp16' is not one of its variants"),
])
def test_missing_reference_is_a_clear_error(patch, message):
    config = json.loads(json.dumps(CONFIG))
    del config["models"]["tiny"]["reference"]
    config["models"]["tiny"].update(patch)
    validate_config(config)
    with pytest.raises(EngineBenchError, match=message):
        build_plan(config)


def test_gate_checks_each_threshold_both_ways():
    metrics = {"perplexity_ratio": 1.2, "kl_divergence_mean": 0.01, "top1_agreement": 0.95,
               "greedy_agreement": 0.1, "repetition_increase": 0.0}
    thresholds = {"max_perplexity_ratio": 1.1, "max_kl_divergence": 0.05, "min_top1_agreement": 0.9,
                  "min_greedy_agreement": 0.25, "max_repetition_increase": 0.12}
    result = gate(metrics, thresholds)
    assert result["verdict"] == "FAIL"
    assert [c["passed"] for c in result["checks"]] == [False, True, True, False, True]
    assert result["reasons"] == ["perplexity ratio 1.2× > 1.1×", "greedy token agreement 0.1 < 0.25"]
    no_logits = {k: v for k, v in metrics.items() if k in ("greedy_agreement", "repetition_increase")}
    assert [c["metric"] for c in gate(no_logits, thresholds)["checks"]] == ["greedy_agreement", "repetition_increase"]
