"""The report's findings (enginebench.findings) decided from records, checked on data, not on prose:
the committed default report's result files, and the same files with one condition changed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from enginebench.bench import at_batch
from enginebench.findings import answer, load_results, ran
from enginebench.plan import build_plan, load_config

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "default-report"


@pytest.fixture(scope="module")
def default_results(tmp_path_factory):
    plan = build_plan(load_config(REPO / "config" / "config.yaml"))
    layout = plan.report_layout()
    model = layout["models"][0]
    root = tmp_path_factory.mktemp("run")
    (root / "results").symlink_to(DOCS)
    results = load_results(root, model["slug"], model["variants"], layout["quality"]["gate"])
    return results, root / "results" / model["slug"], max(layout["bench"]["batch_sizes"])


def test_the_answer_follows_from_the_records(default_results):
    results, model_dir, largest = default_results
    found = answer(results, model_dir, largest)
    verdicts = {v: r["verdict"]["verdict"] for v, r in results.items()}
    passing = {v for v, r in results.items() if ran(r) and verdicts[v] == "PASS"}
    assert passing and found["busy"] == {} and found["no_reference"] == []
    assert [a["variant"] for a in found["avoid"]] == [v for v, r in results.items() if ran(r) and verdicts[v] == "FAIL"]
    assert [n["variant"] for n in found["not_built"]] == [v for v, r in results.items() if not ran(r)]
    weights = {v: results[v]["bench"]["engine_info"]["weight_bytes"] for v in passing}
    assert found["smallest"]["variant"] == min(weights, key=weights.get)
    assert [p["batch_size"] for p in found["picks"]] == [1, largest]
    for pick in found["picks"]:
        ranking = pick["ranking"]
        assert {r["variant"] for r in ranking} == passing
        medians = [at_batch(results[r["variant"]]["bench"]["metrics"], pick["batch_size"])["tokens_per_s"]["median"]
                   for r in ranking]
        assert medians == sorted(medians, reverse=True)
        assert ranking[0]["tie"] is None


def test_a_busy_bench_or_a_broken_reference_ranks_nothing(default_results):
    results, model_dir, largest = default_results
    busy = copy.deepcopy(results)
    fastest = answer(results, model_dir, largest)["picks"][0]["ranking"][0]["variant"]
    busy[fastest]["bench"]["host_load"] = {**busy[fastest]["bench"]["host_load"], "busy": True, "other_share": 0.4}
    found = answer(busy, model_dir, largest)
    assert found["busy"] == {fastest: 0.4} and found["picks"] == []

    broken = copy.deepcopy(results)
    for result in broken.values():
        result["verdict"] = {"verdict": "NO REFERENCE", "reasons": ["the reference engine is broken: x"], "checks": []}
    found = answer(broken, model_dir, largest)
    assert found["no_reference"] == ["the reference engine is broken: x"]
    assert found["picks"] == [] and found["avoid"] == [] and found["smallest"] is None
