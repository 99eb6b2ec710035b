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


def test_serving_ranks_only_passing_engines_whose_server_answered_as_they_do(default_results):
    """Serve records attached to the committed run's engines: a served engine that passes is ranked by its
    best step within the SLO; one whose answers differ, one whose server failed, one not served and a
    failing engine's (whatever its figures) are not."""
    from enginebench.findings import serving

    results, _, _ = default_results
    results = copy.deepcopy(results)
    verdicts = {v: r["verdict"]["verdict"] for v, r in results.items() if ran(r)}
    passing = [v for v, verdict in verdicts.items() if verdict == "PASS"]
    failing = next(v for v, verdict in verdicts.items() if verdict == "FAIL")
    fast, slow, differs, broken, unserved = passing[:5]

    def ok(requests_per_s):
        step = {"requests_per_s": requests_per_s, "meets_slo": True}
        return {"status": "ok", "check": {"passed": True}, "steps": [step], "best": step}

    results[fast]["serve"], results[slow]["serve"], results[failing]["serve"] = ok(9.0), ok(3.0), ok(99.0)
    results[differs]["serve"] = {"status": "failed", "reason": "served output differs", "check": {"passed": False}}
    results[broken]["serve"] = {"status": "failed", "reason": "the server exited", "check": {"passed": True}}
    results[unserved]["serve"] = {"status": "unavailable", "reason": "no server for torch engines yet"}
    found = serving(results)
    assert [r["variant"] for r in found["ranking"]] == [fast, slow] and found["ranking"][1]["tie"] is None
    assert list(found["differs"]) == [differs] and list(found["failed"]) == [broken]
    assert list(found["not_served"]) == [unserved]
    results[slow]["serve"]["best"] = None
    assert serving(results)["none_within"] == [slow]
    results[fast]["serve"]["host_load"] = {"busy": True, "other_share": 0.4}  # measured beside other work
    found = serving(results)
    assert found["ranking"] == [] and found["busy"] == {fast: 0.4}
