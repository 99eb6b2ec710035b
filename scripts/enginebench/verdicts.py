"""The quality gate's policy: a quality record and the configured thresholds give a verdict. Shared by
the report, the figures and the gate; applied when reading, so thresholds change without re-measuring."""

from __future__ import annotations

from pathlib import Path

from .quality_metrics import REPEAT_N

# gate key -> (metric key in the quality record, comparison, label, unit)
CHECKS = {
    "max_perplexity_ratio": ("perplexity_ratio", "<=", "perplexity ratio", "×"),
    "max_kl_divergence": ("kl_divergence_mean", "<=", "mean KL divergence", " nats"),
    "min_top1_agreement": ("top1_agreement", ">=", "top-1 agreement", ""),
    "min_greedy_agreement": ("greedy_agreement", ">=", "greedy token agreement", ""),
    "max_repetition_increase": ("repetition_increase", "<=", f"repeated {REPEAT_N}-gram share increase", ""),
}


def gate(metrics: dict, thresholds: dict) -> dict:
    """PASS when every measured metric with a configured threshold is within it; FAIL names each miss,
    after the reasons an engine is broken (non-finite logits, empty samples), which no threshold lifts.
    Applied when reading quality results (report, gate), so thresholds can change without re-measuring."""
    checks, failures = [], list(metrics.get("broken", []))
    for key, (metric, op, label, unit) in CHECKS.items():
        limit = thresholds.get(key)
        if limit is None or metric not in metrics:
            continue
        value = metrics[metric]
        passed = value <= limit if op == "<=" else value >= limit
        checks.append({"metric": metric, "value": value, "op": op, "threshold": limit, "passed": passed})
        if not passed:
            failures.append(f"{label} {value:.3g}{unit} {'>' if op == '<=' else '<'} {limit:g}{unit}")
    return {"verdict": "FAIL" if failures else "PASS", "reasons": failures, "checks": checks}


# Verdicts whose engines' speed is shown and ranked: a pass, or a placeholder model's engine, whose
# quality means nothing (its report says "speed only")
SPEED_SHOWN = ("PASS", "NOT APPLICABLE")


# Verdicts that fail the gate (and the run, with quality.fail_on_gate)
GATE_FAILS = ("FAIL", "NO VERDICT", "NO REFERENCE")


def verdict(record: dict, thresholds: dict) -> dict:
    """{"verdict", "reasons", "checks"} of one engine's quality result. PASS or FAIL; NOT RUN when the
    engine could not be built on this host; NOT APPLICABLE for a placeholder model's engine (random
    weights: speed only); NO REFERENCE when the model's reference engine is broken (nothing can be judged
    against it); NO VERDICT when it or its reference failed."""
    if record.get("status") != "ok":
        verdict = {"unavailable": "NOT RUN", "not_applicable": "NOT APPLICABLE",
                   "no_reference": "NO REFERENCE"}.get(record.get("status"), "NO VERDICT")
        return {"verdict": verdict, "reasons": [record.get("reason", "no quality result")], "checks": []}
    return gate(record["metrics"], thresholds)


def gate_summary(spec: dict, root: Path) -> dict:
    """Every engine's verdict (and its predicted one) from the quality results; `failed` lists each
    FAIL, NO VERDICT or NO REFERENCE. NOT RUN (not built on this host) and NOT APPLICABLE (placeholder weights) are
    listed but do not fail the gate."""
    from . import paths, results

    engines, failed = [], []
    for model in spec["models"]:
        for variant in model["variants"]:
            kinds = [("engine", paths.QUALITY)] + ([("predicted", paths.PREDICTED)] if variant["predicted_by"] else [])
            for kind, pattern in kinds:
                record = results.read(Path(root) / pattern.format(model=model["slug"], variant=variant["slug"]),
                                      "quality" if kind == "engine" else "predicted_quality")
                result = verdict(record, spec["quality"]["gate"])
                engines.append({"model": model["slug"], "variant": variant["slug"], "kind": kind, **result})
                if result["verdict"] in GATE_FAILS:
                    name = f"{model['slug']}/{variant['slug']}{' (predicted)' if kind == 'predicted' else ''}"
                    failed.append(f"{name}: {result['verdict']} ({'; '.join(result['reasons'])})")
    return {"stage": "gate", "thresholds": spec["quality"]["gate"], "engines": engines, "failed": failed}
