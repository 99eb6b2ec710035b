"""What the report decides, read from a run's result records (enginebench.findings), for tests that check
decisions (verdicts, what is ranked, the answer) on data rather than on the rendered Markdown."""

from __future__ import annotations

from pathlib import Path

from enginebench import findings


def findings_of(root: Path, plan, model: str) -> dict:
    """{"results": per-engine records and verdicts, "shown": the engines whose speed the report shows,
    "answer": findings.answer} for `model` of the run under `root`."""
    layout = plan.report_layout()
    (entry,) = [m for m in layout["models"] if m["slug"] == model]
    results = findings.load_results(root, model, entry["variants"], layout["quality"]["gate"])
    largest = max(layout["bench"]["batch_sizes"])
    return {"results": results, "shown": set(findings.speed_shown(results)),
            "answer": findings.answer(results, root / "results" / model, largest)}


def verdicts(found: dict) -> dict[str, str]:
    return {v: r["verdict"]["verdict"] for v, r in found["results"].items()}


def picks(found: dict) -> list[list[str]]:
    """Each pick's ranking (one request at a time, then the largest batch), fastest first."""
    return [[r["variant"] for r in pick["ranking"]] for pick in found["answer"]["picks"]]
