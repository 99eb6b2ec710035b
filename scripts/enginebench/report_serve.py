"""The report's serving section: each engine behind its own server, its answers checked, its load swept
(enginebench.serve). What to show is decided in enginebench.findings (serving, serve_shown)."""

from __future__ import annotations

from pathlib import Path

from . import paths
from .backends import get_backend
from .figures import SERVE_FIGURE
from .findings import rate_summary, serve_shown
from .report_cells import fmt_number, table
from .serve_commands import profile, profile_text, step_load


def slo_text(slo: dict) -> str:
    return f"TTFT p90 ≤ {fmt_number(slo['ttft_ms'])} ms and ITL p90 ≤ {fmt_number(slo['itl_ms'])} ms"


def rate_text(summary: dict) -> str:
    """Requests/s over the sweeps: the median, its range where there were several."""
    n = summary.get("n", 1)
    if n == 1:
        return f"{fmt_number(summary['median'])} requests/s (1 sweep)"
    return (f"{fmt_number(summary['median'])} requests/s ({fmt_number(summary['min'])}–{fmt_number(summary['max'])}, "
            f"{n} sweeps)")


def step_rate(step: dict) -> str:
    return rate_text(rate_summary(step)).removesuffix(" (1 sweep)").replace(" requests/s", "")


def serving_line(found: dict | None, slo: dict) -> list[str]:
    """The answer's line: the most requests/s within the SLO, ties as elsewhere; servers that failed."""
    if found is None:
        return []
    lines = []
    ranking = found["ranking"]
    what = f"Most requests/s within the SLO ({slo_text(slo)})"
    if found["busy"]:
        busy = ", ".join(f"`{v}` ({share:.0%} of the CPU)" for v, share in found["busy"].items())
        lines.append(f"{what}: no winner called: other processes were using the host while {busy} served its "
                     "load; re-measure on an idle host (`snakemake --forcerun serve`).")
    elif ranking or found["none_within"]:
        if ranking:
            best, ties = ranking[0], [r for r in ranking[1:] if r["tie"]]
            text = f"{what}: **`{best['variant']}`**, {rate_text(best['summary'])}"
            text += "".join(f"; a tie with `{r['variant']}`: {r['tie']}" for r in ties)
        else:
            text = f"{what}: none; no served engine met it at any step"
        if found["none_within"]:
            text += f"; not within it at any step: {', '.join(f'`{v}`' for v in found['none_within'])}"
        lines.append(text + ".")
    if found["differs"]:
        lines.append("Served output is not the engine's: " + "; ".join(
            f"`{v}` (FAIL: {reason.splitlines()[0]})" for v, reason in found["differs"].items()) + ".")
    if found["failed"]:
        lines.append("Server failed: " + "; ".join(
            f"`{v}` ({reason.splitlines()[0]})" for v, reason in found["failed"].items()) + ".")
    return lines


def _p(step: dict, key: str, scale: float = 1.0) -> str:
    values = step[key]
    if "p90" not in values:
        return "—"
    return " / ".join(fmt_number(values[p] * scale) for p in ("p50", "p90", "p99") if p in values)


def serving_section(results: dict[str, dict], serve: dict, model: str) -> dict | None:
    """The served-output check of every served engine, the best step of each shown engine, and every
    step of the sweep; None when nothing was served."""
    served = {v: r for v, r in results.items() if "serve" in r}
    if not served:
        return None
    shown = serve_shown(results)
    checks, best_rows, step_rows = [], [], []
    # how many sweeps the records hold (not the config's serve.repetitions: a report re-rendered under another
    # config must not misstate them)
    counts = {v: max((s.get("sweeps", 1) for s in r["serve"]["steps"]), default=0) for v, r in shown.items()}
    sweeps = max(counts.values(), default=0)
    # the profile as the records ran it (a report re-rendered under another config must not misstate it)
    profiles = list(dict.fromkeys(profile_text(r["serve"]["spec"]["serve"]) for r in shown.values())) or [
        profile_text(serve)]
    completed = "Completed" if sweeps == 1 else "Completed (all sweeps)"
    for variant, r in served.items():
        checks.append(f"`{variant}`: {check_state(r['serve'])}")
        if variant in shown:
            best_rows.append(best_row(variant, r["serve"]))
            step_rows += sweep_rows(variant, r["serve"], completed)
    (name, title), = SERVE_FIGURE.items()
    figure = {"path": Path(paths.FIGURE.format(model=model, figure=name)).relative_to("results").as_posix(),
              "title": title}
    servers = list(dict.fromkeys(get_backend(spec["backend"]).server_description(spec["serve"]["slots"])
                                 for r in served.values() if "server" in r["serve"]  # started (from the records)
                                 for spec in [r["serve"]["spec"]]))
    return {"slo": slo_text(serve["slo"]), "servers": servers, "checks": checks, "best": table(best_rows),
            "steps": table(step_rows), "settings": serve, "profile": "; ".join(profiles),
            "sweeps": sweeps_text(counts), "sweep_counts": counts,
            "figure": figure}


def check_state(record: dict) -> str:
    """What the served-output check of one serve record found, in words."""
    check = record.get("check")
    if record["status"] == "ok" and not check.get("compared", True):
        lengths = ("prompt lengths equal" if check.get("prompt_lengths_reported", 1) else
                   "prompt lengths not reported by the server, so not checked")
        state = (f"not compared: {check['not_compared']}; {lengths} ({check['equal']} of "
                 f"{len(check['answers'])} answers equal all the same, {check['api']})")
    elif record["status"] == "ok":
        state = f"equal ({len(check['answers'])} of {len(check['answers'])} answers, {check['api']})"
    elif check is not None and not check["passed"]:
        state = f"FAIL: {check['reason']}"
    elif record["status"] == "unavailable":
        state = f"not served: {record['reason']}"
    else:
        state = f"{record['status']}: {record['reason'].splitlines()[0]}"
    if "response_template" in record.get("server", {}):
        state += (f"; the server was given a response template anchored on the chat template's "
                  f"{record['server']['response_template']['start_anchor']!r} (its own missed it)")
    return state


def best_row(variant: str, record: dict) -> dict:
    """One engine's best step within the SLO (or "none")."""
    best = record["best"]
    return {"Engine": variant,
            "Requests/s within SLO": step_rate(best) if best else "none",
            **(dict([step_load(best)]) if best else {profile(record["spec"]["serve"])["column"]: "—"}),
            "Output tokens/s": fmt_number(best["output_tokens_per_s"]) if best else "—",
            "TTFT p90 (ms)": fmt_number(best["ttft_ms"]["p90"]) if best else "—",
            "ITL p90 (ms)": fmt_number(best["itl_ms"]["p90"]) if best else "—"}


def sweep_rows(variant: str, record: dict, completed: str) -> list[dict]:
    """Every step of one engine's sweep."""
    return [{"Engine": variant, **dict([step_load(step)]),
             "Requests/s": step_rate(step),
             "Goodput (requests/s)": "—" if step["goodput_rps"] is None else fmt_number(step["goodput_rps"]),
             "Output tokens/s": fmt_number(step["output_tokens_per_s"]),
             "TTFT p50/p90/p99 (ms)": _p(step, "ttft_ms"), "ITL p50/p90/p99 (ms)": _p(step, "itl_ms"),
             "End-to-end p50/p90/p99 (s)": _p(step, "e2e_s"),
             completed: step["completed"], "Errors": step["errored"],
             "Within SLO": within_slo(step, [sweep[i] for sweep in record.get("sweeps", [])])}
            for i, step in enumerate(record["steps"])]


def within_slo(step: dict, sweeps: list[dict]) -> str:
    """Whether a step met the SLO (in every sweep), and in how many sweeps where only some did: the medians
    shown may lie within the SLO where one sweep's did not."""
    if step["meets_slo"]:
        return "yes"
    met = sum(s["meets_slo"] for s in sweeps)
    return f"no (met in {met} of {len(sweeps)} sweeps)" if met else "no"


def sweeps_text(counts: dict[str, int]) -> str:
    """How many sweeps each swept engine's figures hold (from the records: a report re-rendered under another
    config must not misstate them)."""
    by_count: dict[int, list[str]] = {}
    for variant, n in counts.items():
        if n:
            by_count.setdefault(n, []).append(f"`{variant}`")
    several = ("every figure their median, requests/s with its min–max range; engines whose ranges overlap "
               "tie")
    if len(by_count) > 1:
        return ("sweeps per engine on the same server: " + "; ".join(
            f"{n} for {', '.join(names)}" for n, names in sorted(by_count.items(), reverse=True))
            + f" (where several, {several}; one sweep has no spread)")
    if not by_count:
        return "no engine's load was swept"
    n = next(iter(by_count))
    return f"{n} sweeps per engine on the same server ({several})" if n > 1 else "one sweep per engine (no spread)"
