"""A broken engine is a verdict, not a crash: an engine whose float16 logits overflow to inf gets FAIL
with that reason, its speed is struck through and kept out of the recommendation, and the report
renders with every other engine. The engines are real (PyTorch); "broken" is the torch engine loading
a copy of the snapshot whose output projection overflows float16 (tinymodel.overflow)."""

import json

import pytest
from cliflow import run_pipeline
from tinymodel import overflow

from enginebench import paths
from enginebench.quality import EMPTY_SAMPLES, NON_FINITE, gate, verdict

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


@pytest.fixture(scope="module")
def run(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    plan = run_pipeline(CONFIG, tiny_model, root,
                        snapshot_of={"fp16-overflow": lambda snap: overflow(snap, root / "overflow-snapshot")})
    return root, plan


def test_non_finite_logits_fail_with_that_reason(run):
    root, plan = run
    record = json.loads((root / paths.QUALITY.format(model="tiny", variant="fp16-overflow")).read_text())
    assert record["status"] == "ok"
    assert NON_FINITE in record["metrics"]["broken"]
    result = verdict(record, plan.config["quality"]["gate"])
    assert result["verdict"] == "FAIL" and result["reasons"][0] == NON_FINITE
    # no threshold lifts it
    assert verdict(record, {key: None for key in plan.config["quality"]["gate"]})["verdict"] == "FAIL"


def test_report_renders_every_engine_and_strikes_the_broken_one(run):
    root, _ = run
    report = (root / paths.REPORT).read_text()
    engines = report[report.index("| Engine |"):]
    engines = engines[:engines.index("\n\n")]
    rows = {line.split(" | ")[0].strip("| ").split(" ")[0]: line for line in engines.splitlines()[2:]}
    assert set(rows) == {"fp32", "fp16-overflow", "llama-f16"}
    assert f"FAIL: {NON_FINITE}" in rows["fp16-overflow"] and "~~" in rows["fp16-overflow"]
    assert "PASS" in rows["fp32"] and "PASS" in rows["llama-f16"] and "~~" not in rows["llama-f16"]
    recommendation = report[report.index("Not recommended"):].splitlines()[0]
    assert "`fp16-overflow`" in recommendation


def test_empty_samples_fail():
    result = gate({"broken": [EMPTY_SAMPLES], "greedy_agreement": 1.0}, {"min_greedy_agreement": 0.15})
    assert result["verdict"] == "FAIL" and result["reasons"] == [EMPTY_SAMPLES]
