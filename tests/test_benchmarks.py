"""The benchmark scripts' own logic (they print figures; the figures are not asserted)."""

import json

import bench_harness_overhead
import bench_pipeline

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
