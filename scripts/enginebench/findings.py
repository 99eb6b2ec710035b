"""What the report says, decided from the result records and nothing else: which engines ran and
passed, how they rank and where they tie, the answer per model. No Markdown here: enginebench.report
lays these findings out."""

from __future__ import annotations

import json
from pathlib import Path

from . import history, paths
from . import results as records
from .backends.base import parallel_gpus
from .bench import at_batch
from .verdicts import SPEED_SHOWN, verdict


def passed(results: dict) -> bool:
    """Whether the engine's speed may be shown and ranked: it passes the gate, or its model is a
    placeholder whose quality means nothing (NOT APPLICABLE: the report says "speed only")."""
    return results["verdict"]["verdict"] in SPEED_SHOWN


def load_results(root: Path, model: str, variants: list[dict], thresholds: dict) -> dict[str, dict]:
    checkpoints = [spec["checkpoint"] for spec in variants]
    results = {}
    for spec in variants:
        variant = spec["slug"]
        ckpt_dir = root / paths.CHECKPOINT.format(model=model, checkpoint=spec["checkpoint"])
        results[variant] = {
            "spec": spec,
            "checkpoint": records.read(ckpt_dir / paths.MANIFEST, "checkpoint"),
            "checkpoint_shared": checkpoints.count(spec["checkpoint"]) > 1,
            "engine": records.read(root / paths.ENGINE.format(model=model, variant=variant) / paths.MANIFEST,
                                   "engine"),
            "bench": records.read(root / paths.BENCH.format(model=model, variant=variant), "bench"),
            "samples": records.read(root / paths.SAMPLES.format(model=model, variant=variant), "samples"),
            "quality": records.read(root / paths.QUALITY.format(model=model, variant=variant), "quality"),
        }
        if spec.get("served"):
            results[variant]["serve"] = records.read(root / paths.SERVE.format(model=model, variant=variant), "serve")
        results[variant]["verdict"] = verdict(results[variant]["quality"], thresholds)
        results[variant]["status"] = status_of(results[variant])
        if spec["predicted_by"]:
            predicted = records.read(root / paths.PREDICTED.format(model=model, variant=variant),
                                     "predicted_quality")
            results[variant]["predicted"] = {"by": spec["predicted_by"], "record": predicted,
                                             "verdict": verdict(predicted, thresholds)}
    return results


def status_of(results: dict) -> tuple[str, str]:
    """("ok", "") or the status and reason of the first stage that did not produce its artifact."""
    for key in ("checkpoint", "engine", "bench", "samples"):
        record = results[key]
        if record.get("status", "ok") != "ok":
            return record["status"], f"{key}: {record['reason']}"
    return "ok", ""


def ran(results: dict) -> bool:
    return results["status"][0] == "ok"


def speed_shown(results: dict[str, dict]) -> dict[str, dict]:
    """The engines whose speed the report shows and ranks (every speed table, the sweep, the picks):
    those that ran and pass the gate (or whose model is speed only), in the given order."""
    return {v: r for v, r in results.items() if ran(r) and passed(r)}


def would_run(results: dict) -> list[dict]:
    """{"stage", "command"} of each stage that could not run on this host and recorded what it would run."""
    return [{"stage": key, "command": results[key]["would_run"]} for key in ("checkpoint", "engine")
            if results[key].get("would_run")]


def busy_host(record: dict) -> float | None:
    """The share of the host's CPU other processes used while this bench or load sweep measured, where
    that made the host busy (enginebench.hostload), else None."""
    load = record.get("host_load")
    return load["other_share"] if load and load["busy"] else None


def history_conditions(result: dict, stage: str) -> str | None:
    """The fingerprint of the conditions this engine's `stage` artifact was made under (see history)."""
    if stage == "bench":
        return history.fingerprint(result["bench"]["spec"])
    return result[stage].get("conditions")  # a build manifest keeps it (None from before it did)


def history_spread(model_dir: Path, variant: str, result: dict, key: str) -> float | None:
    """The spread of one bench figure across this engine's runs recorded under the same conditions as
    this one (None below two runs)."""
    return history.spread([r["figures"][key] for r in history.records(model_dir, "bench", variant,
                                                                      history_conditions(result, "bench"))
                           if key in r["figures"]])


def tie_reason(leader: dict, other: dict, spreads: tuple[float | None, float | None]) -> str | None:
    """Why the runs cannot tell `other` from the faster `leader` (both bench summaries), or None:
    their min–max ranges overlap, or the figure's spread across recorded runs exceeds the difference."""
    if other["max"] >= leader["min"]:
        return "ranges overlap"
    difference = (leader["median"] - other["median"]) / leader["median"]
    spread = max((s for s in spreads if s is not None), default=None)
    if spread is not None and spread > difference:
        return f"run-history spread {spread:.1%} exceeds the {difference:.1%} difference"
    return None


def ranked(candidates: dict[str, dict], spreads: dict[str, float | None]) -> list[dict]:
    """Engines by median, fastest first; each after the first carries why it ties with the fastest
    (`tie`, None where the runs tell them apart)."""
    order = sorted(candidates, key=lambda v: -candidates[v]["median"])
    leader = order[0] if order else None

    def tie(v: str) -> str | None:
        return None if v == leader else tie_reason(candidates[leader], candidates[v], (spreads[leader], spreads[v]))

    return [{"variant": v, "summary": candidates[v], "tie": tie(v)} for v in order]


def peak_bytes(metrics: dict) -> float:
    return metrics["peak_device_bytes"]["value"] or metrics["peak_rss_bytes"]["value"]


def avoid_finding(variant: str, result: dict) -> dict:
    """Why an engine that ran is not recommended: its verdict and reasons, and for a FAIL the first
    reason it is broken, its perplexity ratio and how many checks it failed."""
    found = {"variant": variant, "verdict": result["verdict"]["verdict"], "reasons": result["verdict"]["reasons"]}
    if found["verdict"] == "FAIL":
        metrics = result["quality"]["metrics"]
        found.update(broken=(metrics.get("broken") or [None])[0], perplexity_ratio=metrics.get("perplexity_ratio"),
                     failed_checks=sum(not c["passed"] for c in result["verdict"]["checks"]))
    return found


def serve_shown(results: dict[str, dict]) -> dict[str, dict]:
    """The engines whose serving figures the report shows and ranks: speed shown (enginebench.findings.
    speed_shown) and served, their server's answers equal to their own."""
    return {v: r for v, r in speed_shown(results).items() if r.get("serve", {}).get("status") == "ok"}


def rate_summary(step: dict) -> dict:
    """A serving step's requests/s over its sweeps (enginebench.stats.summarize). Older records: the median
    and its min-max range (written before the summary), or one sweep's figure alone."""
    if "requests_per_s_summary" in step:
        return step["requests_per_s_summary"]
    low, high = step.get("requests_per_s_range") or [step["requests_per_s"]] * 2
    return {"median": step["requests_per_s"], "min": low, "max": high, "n": step.get("sweeps", 1)}


def serving(results: dict[str, dict]) -> dict | None:
    """Requests/s within the SLO, ranked (median over the sweeps; engines tie where their min-max ranges
    overlap, so one sweep each ties only on equal figures), the engines
    whose served answers differ from their own, whose server failed, or that were not served; None when
    nothing was served. A sweep measured while other processes used the host ranks nothing (`busy`)."""
    served = {v: r["serve"] for v, r in results.items() if "serve" in r}
    if not served:
        return None
    shown = serve_shown(results)
    busy = {v: share for v, r in shown.items() if (share := busy_host(r["serve"]))}
    best = {v: r["serve"]["best"] for v, r in shown.items() if r["serve"]["best"]}
    figures = {} if busy else {v: rate_summary(b) for v, b in best.items()}
    return {"ranking": ranked(figures, dict.fromkeys(figures)), "busy": busy,
            "none_within": [v for v, r in shown.items() if not r["serve"]["best"]],
            "differs": {v: s["reason"] for v, s in served.items()
                        if s["status"] == "failed" and not s.get("check", {}).get("passed", True)},
            "failed": {v: s["reason"] for v, s in served.items()
                       if s["status"] == "failed" and s.get("check", {}).get("passed", True)},
            "not_served": {v: s["reason"] for v, s in served.items() if s["status"] not in ("ok", "failed")}}


def answer(results: dict[str, dict], model_dir: Path, batch_size: int) -> dict:
    """The model's answer: the reference's breakage (nothing is judged or ranked then), the engines
    measured on a busy host (nothing is ranked then), the speed rankings one request at a time and at
    `batch_size`, the smallest passing engine, what to avoid and what was not built."""
    passing = speed_shown(results)
    no_reference = sorted({r["verdict"]["reasons"][0] for r in results.values()
                           if r["verdict"]["verdict"] == "NO REFERENCE"})
    if no_reference:
        passing = {}
    busy = {v: share for v, r in passing.items() if (share := busy_host(r["bench"]))}
    picks = []
    if not busy and not no_reference:
        for size in (1, batch_size):
            figures = {v: at_batch(r["bench"]["metrics"], size)["tokens_per_s"] for v, r in passing.items()}
            spreads = {v: history_spread(model_dir, v, r, f"tokens_per_s_batch{size}") for v, r in passing.items()}
            picks.append({"batch_size": size, "ranking": ranked(figures, spreads)})
    sized = {v: r["bench"]["engine_info"]["weight_bytes"] for v, r in passing.items()
             if r["bench"]["engine_info"].get("weight_bytes")}
    smallest = min(sized, key=sized.get) if sized else None
    return {
        "no_reference": no_reference, "busy": busy, "picks": picks,
        "smallest": None if smallest is None else {
            "variant": smallest, "weight_bytes": sized[smallest],
            "peak_bytes": peak_bytes(passing[smallest]["bench"]["metrics"])},
        "serving": serving(results) if not (busy or no_reference) else None,
        "avoid": [avoid_finding(v, r) for v, r in results.items()
                  if ran(r) and not passed(r) and r["verdict"]["verdict"] != "NO REFERENCE"],
        "not_built": [{"variant": v, "predicted": results[v]["predicted"]["verdict"]["verdict"]
                       if "predicted" in results[v] else None} for v, r in results.items() if not ran(r)],
    }


def on_gpu(bench: dict) -> bool:
    """Whether the engine ran on a GPU, as it reported its device (a partly offloaded llama.cpp: no)."""
    return str(bench["engine_info"].get("device", "cpu")).startswith("cuda")


def _scaled(results: dict[str, dict], variant: str, base: str) -> list[dict]:
    """`variant`'s tokens/s at every batch size the base ran too ÷ `base`'s at the same size (`speedup`), and
    that ÷ the ratio of their GPU counts (`efficiency`)."""
    gpus = parallel_gpus(results[variant]["spec"]["settings"]) / parallel_gpus(results[base]["spec"]["settings"])
    base_sizes = {point["batch_size"] for point in results[base]["bench"]["metrics"]["sweep"]}
    points = []
    for point in results[variant]["bench"]["metrics"]["sweep"]:
        if point["batch_size"] not in base_sizes:  # records of another sweep
            continue
        speedup = (point["tokens_per_s"]["median"]
                   / at_batch(results[base]["bench"]["metrics"], point["batch_size"])["tokens_per_s"]["median"])
        points.append({"batch_size": point["batch_size"], "tokens_per_s": point["tokens_per_s"],
                       "speedup": speedup, "efficiency": speedup / gpus})
    return points


def scaling(results: dict[str, dict]) -> list[dict]:
    """Engines that differ only in the GPUs they span (the same backend and settings but how many build
    workers, split the same way; an engine on one GPU belongs to every split of its settings), fewest GPUs
    first, where such a family has two or more: `shown` those whose speed is shown (speed_shown) and that ran
    on the split engines' kind of device, each with its points (_scaled) against the fewest GPUs of them
    (`base`); `elsewhere` those that ran on the other kind (an engine of one GPU whose job got none: no
    ratio); `failed` those that ran and fail the gate; `not_run` those that did not run here (did not fit,
    or no such host), with why."""
    def family_of(spec: dict) -> tuple[str, str]:
        settings = {k: v for k, v in spec["settings"].items() if k != "parallel"}
        if isinstance(settings.get("build"), dict):  # TensorRT-LLM's build workers: how fast it builds, not runs
            settings["build"] = {k: v for k, v in settings["build"].items() if k != "workers"}
        return spec["backend"], json.dumps(settings, sort_keys=True)

    def mode(spec: dict) -> str | None:
        return spec["settings"]["parallel"]["mode"] if parallel_gpus(spec["settings"]) > 1 else None

    splits = dict.fromkeys((*family_of(r["spec"]), mode(r["spec"])) for r in results.values() if mode(r["spec"]))
    shown = speed_shown(results)
    found = []
    for backend, settings, split in splits:
        members = sorted((v for v, r in results.items()
                          if family_of(r["spec"]) == (backend, settings) and mode(r["spec"]) in (None, split)),
                         key=lambda v: parallel_gpus(results[v]["spec"]["settings"]))
        if len(members) < 2:
            continue
        gpus = {v: parallel_gpus(results[v]["spec"]["settings"]) for v in members}
        split_devices = [on_gpu(results[v]["bench"]) for v in members if v in shown and gpus[v] > 1]
        device = max(set(split_devices), key=split_devices.count) if split_devices else None
        measured = [v for v in members if v in shown and device in (None, on_gpu(results[v]["bench"]))]
        base = measured[0] if measured else None
        found.append({"backend": backend, "mode": split, "base": base,
                      "shown": [{"variant": v, "gpus": gpus[v], "points": _scaled(results, v, base)} for v in measured],
                      "elsewhere": [{"variant": v, "gpus": gpus[v],
                                     "device": results[v]["bench"]["engine_info"].get("device", "not reported")}
                                    for v in members if v in shown and v not in measured],
                      "failed": [{"variant": v, "gpus": gpus[v], "verdict": results[v]["verdict"]["verdict"]}
                                 for v in members if ran(results[v]) and v not in shown],
                      "not_run": [{"variant": v, "gpus": gpus[v], "reason": results[v]["status"][1]}
                                  for v in members if not ran(results[v])]})
    return found
