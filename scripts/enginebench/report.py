"""Render results/report.md from the result JSONs (through pandas and a StrictUndefined Jinja template).

The report answers first (per model: what to run for one user, for many, the smallest engine that
keeps quality, what to avoid), then gives one table per question with engines as rows, then an
appendix. Every number shown comes from a result file of this run, with its unit and spread; a value
that was not measured shows why. A failing engine's speed figures appear in no speed table.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from . import findings, history, paths
from . import results as records
from .bench import at_batch
from .disk import configured_need, parameter_count
from .figures import FIGURES
from .findings import busy_host, history_conditions, load_results, passed, peak_bytes, ran, would_run
from .io import read_json
from .roofline import bound_bandwidth
from .scheduler import bandwidth_source, node_text
from .verdicts import CHECKS

MB = 1e6


@dataclass(frozen=True)
class Cell:
    text: str
    value: float | None = None  # the number behind the text (rankings, speedups)


def fmt_number(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def summary_cell(summary: dict) -> Cell:
    """Median with its min–max range and repetition count, e.g. '12.3 (11.9–12.6, n=3)'."""
    med = summary["median"]
    if summary["n"] == 1:
        return Cell(f"{fmt_number(med)} (n=1)", med)
    lo, hi = summary["min"], summary["max"]
    return Cell(f"{fmt_number(med)} ({fmt_number(lo)}–{fmt_number(hi)}, n={summary['n']})", med)


def latency_cell(summary: dict) -> Cell:
    """A latency in ms: median and p90 over every measured token, e.g. '41.2; p90 47.9 (n=93)'."""
    med = summary["median"] * 1000
    return Cell(f"{fmt_number(med)}; p90 {fmt_number(summary['p90'] * 1000)} (n={summary['n']:,})", med)


def speedup_text(value: float | None, baseline: float | None) -> str:
    """One direction only: the figure divided by the baseline's, e.g. '1.63×' (faster) or '0.55×'."""
    if value is None or not baseline:
        return "—"
    return f"{value / baseline:.2f}×"


def markdown_table(frame: pd.DataFrame) -> str:
    def esc(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", "<br>")

    lines = ["| " + " | ".join(esc(c) for c in frame.columns) + " |",
             "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def table(rows: list[dict], keep: tuple[str, ...] = ("Engine",)) -> dict | None:
    """{"table": Markdown, "constant": ["Column: value", ...]}: columns with one value in every row
    (of two or more) leave the table and go into the sentence above it. None without rows."""
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    constant = [c for c in frame.columns if c not in keep and len(frame) > 1 and frame[c].astype(str).nunique() == 1]
    return {"table": markdown_table(frame.drop(columns=constant)),
            "constant": [f"{c}: {frame[c].iloc[0]}" for c in constant]}


# --- loading ---------------------------------------------------------------------------------------

# --- the answer -----------------------------------------------------------------------------------

def figure_text(summary: dict, unit: str) -> str:
    """'89.5 tokens/s (86.0–89.9, n=3)': the median with its unit, then its range and n."""
    text = summary_cell(summary).text
    return text.replace(" (", f" {unit} (", 1)


def pick_text(what: str, ranking: list[dict], unit: str) -> str:
    """'<what>: **`A`**, 89.5 tokens/s (86.0–89.9, n=3); a tie with `B`, 87.1 tokens/s (…): ranges overlap.'"""
    if not ranking:
        return f"{what}: no engine passes the quality gate."
    best, ties = ranking[0], [r for r in ranking[1:] if r["tie"]]
    text = f"{what}: **`{best['variant']}`**, {figure_text(best['summary'], unit)}"
    if ties:
        text += "; a tie with " + "; ".join(f"`{r['variant']}`, {figure_text(r['summary'], unit)}: {r['tie']}"
                                            for r in ties)
    return text + "."


def avoid_text(found: dict) -> str:
    """Why an engine that ran is not recommended, in one phrase (the full reasons are in the quality table)."""
    variant = found["variant"]
    if found["verdict"] == "FAIL":
        if found["broken"]:
            return f"`{variant}` (broken: {found['broken']})"
        ratio = (f": perplexity {found['perplexity_ratio']:.2f}× the reference's"
                 if found["perplexity_ratio"] is not None else "")
        failed = found["failed_checks"]
        return f"`{variant}` (fails {failed} quality check{'s' if failed > 1 else ''}{ratio})"
    return f"`{variant}` ({found['verdict']}: {'; '.join(found['reasons'])})"


def answer_lines(found: dict, batch_size: int, speed_only: str | None = None) -> list[str]:
    """The model's answer (findings.answer), one line each: one request at a time, many at once, the
    smallest engine that passes, what to avoid, what was not built; for a placeholder model, first that
    it is speed only."""
    lines = []
    if found["no_reference"]:  # the finding of this model: nothing below ranks its engines
        lines.append(f"**No reference**: {'; '.join(found['no_reference'])}. No engine of this model is judged "
                     "(verdict NO REFERENCE) and no winner is called; mend the reference engine or choose another "
                     "(`models.<name>.reference`).")
    if speed_only:
        lines.append(f"**Speed only**: {speed_only}. Every engine's quality verdict is NOT APPLICABLE; the picks "
                     "below rank speed and size alone, and say nothing of which engine keeps quality.")
    if found["busy"]:
        busy = ", ".join(f"`{v}` ({share:.0%} of the CPU)" for v, share in found["busy"].items())
        lines.append(f"**No winner called**: other processes were using the host while {busy} measured, "
                     "so these speeds cannot be ranked; re-measure on an idle host (`snakemake --forcerun bench`).")
    for i, pick in enumerate(found["picks"]):
        what = "One request at a time" if i == 0 else f"Many at once (batch {batch_size})"
        lines.append(pick_text(what, pick["ranking"], "tokens/s"))
    if smallest := found["smallest"]:
        lines.append(f"Smallest{'' if speed_only else ' that passes'}: **`{smallest['variant']}`**, "
                     f"{fmt_number(smallest['weight_bytes'] / MB)} MB of weights in "
                     f"memory ({fmt_number(smallest['peak_bytes'] / MB)} MB peak).")
    if found["avoid"]:
        lines.append(f"Avoid, whatever their speed: {', '.join(avoid_text(a) for a in found['avoid'])}.")
    if found["not_built"]:
        names = ", ".join(f"`{n['variant']}`" for n in found["not_built"])
        predicted = ", ".join(f"`{n['variant']}` {n['predicted']}" for n in found["not_built"] if n["predicted"])
        lines.append(f"Not built here: {names} (why: \"Not built\" below)"
                     + (f"; predicted quality: {predicted}." if predicted else "."))
    return lines


# --- quality ----------------------------------------------------------------------------------------

def verdict_text(verdict: dict, *, is_reference: bool = False) -> str:
    """PASS, FAIL or why there is no verdict; FAIL reasons are listed once, under the table."""
    if verdict["verdict"] == "PASS":
        return "PASS (reference: self-check)" if is_reference else "PASS"
    if verdict["verdict"] in ("NO VERDICT", "NO REFERENCE"):
        return f"{verdict['verdict']}: {'; '.join(verdict['reasons'])}"
    return verdict["verdict"]


def quality_row(engine: str, spec: dict, record: dict, result: dict) -> dict:
    m = record.get("metrics", {})

    def figure(key: str, form: str) -> str:
        return format(m[key], form) if key in m else "—"

    return {
        "Engine": engine, "Weights": spec["describe"]["quantization"], "KV cache": spec["describe"]["kv_cache"],
        "Verdict": verdict_text(result, is_reference=record.get("is_reference", False)),
        "Perplexity ratio": figure("perplexity_ratio", ".3f"),
        "Mean KL (nats); p99": f"{m['kl_divergence_mean']:.4f}; {m['kl_divergence_p99']:.3f}"
        if "kl_divergence_mean" in m else "—",
        "Top-1": figure("top1_agreement", ".1%"), "Greedy agreement": figure("greedy_agreement", ".1%"),
        "Repeated 4-grams": figure("repeated_ngram_share", ".1%"),
    }


def quality_section(results: dict[str, dict]) -> dict:
    """The quality table (engines that were scored and the stand-ins' predictions), each FAIL's reasons
    once, and what is the same for every engine."""
    rows, failures = [], []
    for variant, r in results.items():
        entries = [(variant, r["quality"], r["verdict"])] if r["quality"].get("status") == "ok" or ran(r) else []
        if "predicted" in r:
            p = r["predicted"]
            entries.append((f"{variant}, predicted by {p['by']}", p["record"], p["verdict"]))
        for engine, record, result in entries:
            rows.append(quality_row(engine, r["spec"], record, result))
            if result["verdict"] == "FAIL":
                failures.append(f"`{engine}`: {'; '.join(result['reasons'])}")
    scored = [r["quality"] for r in results.values() if r["quality"].get("status") == "ok"]
    reference = next((q for q in scored if q.get("is_reference")), None)
    parity = {v: r["bench"]["tokenizer_parity"] for v, r in results.items() if ran(r)}
    return {"table": table(rows), "failures": failures, "predicted": any("predicted" in r for r in results.values()),
            "reference": {"perplexity": fmt_number(reference["metrics"]["perplexity"]),
                          "tokens": f"{reference['metrics']['scored_tokens']:,}",
                          "repeated": f"{reference['metrics']['repeated_ngram_share']:.1%}"} if reference else None,
            "parity": parity_text(parity)}


def parity_text(parity: dict[str, dict]) -> str:
    """One sentence: which engines' own tokenizers give the snapshot's ids, which differ, which have none."""
    equal = [v for v, p in parity.items() if p["checked"] and p["equal"]]
    differ = [f"`{v}` ({len(p['mismatches'])} of {p['texts']} texts)" for v, p in parity.items()
              if p["checked"] and not p["equal"]]
    unchecked = [v for v, p in parity.items() if not p["checked"]]
    parts = ([f"equal for {', '.join(f'`{v}`' for v in equal)}"] if equal else []) + \
            ([f"DIFFERS for {', '.join(differ)}"] if differ else []) + \
            ([f"not applicable to {', '.join(f'`{v}`' for v in unchecked)} (no tokenizer of their own)"]
             if unchecked else [])
    return "; ".join(parts) or "no engine ran"


# --- speed ------------------------------------------------------------------------------------------

def bandwidth_for(bench: dict, host: dict) -> tuple[bool, dict | None, str | None]:
    """(usable, bandwidth, note): the preflight bandwidth that bounds this engine (its GPU's, else the
    host's), whether it was measured on this hardware, and where it was measured."""
    on_gpu = str(bench["engine_info"].get("device", "cpu")).startswith("cuda")
    usable, where = bandwidth_source(bench["environment"], host["environment"])
    return usable, host["bandwidth"]["device" if on_gpu else "host"], where


def roofline_cells(results: dict, host: dict) -> tuple[str, str]:
    """(decode bound, share of it): the single-stream decode bound from the measured bandwidth and the
    engine's bytes per token, and the engine's single-stream decode speed as a share of it."""
    from .roofline import decode_bound, decode_context, kv_bytes_per_token

    bench = results["bench"]
    m, info = bench["metrics"], bench["engine_info"]
    usable, bandwidth, where = bandwidth_for(bench, host)
    if not usable:
        return f"not computed: {where}", "—"
    kv = kv_bytes_per_token(host["model_config"], bench["describe"]["kv_cache"])
    if not info.get("weight_bytes") or bandwidth is None or kv is None:
        return "not computed (weights, KV layout or bandwidth unknown)", "—"
    bound = decode_bound(bound_bandwidth(bandwidth), info["weight_bytes"], kv, decode_context(bench))
    share = m["decode_tokens_per_s_single"]["median"] / bound["tokens_per_s"]
    beaten = (": above its bound, so the bound is wrong: the engine reads fewer bytes per token than counted, or "
              "memory gives it more than the preflight measured" if share > 1 else "")
    return fmt_number(bound["tokens_per_s"]), f"{share:.0%}{beaten}" + (f" ({where})" if where else "")


def device_text(bench: dict) -> str:
    """Where the engine ran, as the engine itself reported it (llama.cpp: read back from its load log)."""
    info = bench["engine_info"]
    device = str(info.get("device", "not reported"))
    if device.startswith("cuda"):
        gpu = info.get("device_name") or next(iter(bench["environment"]["gpus"]), {}).get("name")
        return f"{device} ({gpu})" if gpu else device
    return device


def speed_sections(model: dict, results: dict[str, dict], host: dict, batch_size: int) -> dict:
    """One table for one request at a time and one for the largest batch: passing engines only,
    fastest first, with tokens/s ÷ the baseline's (where the baseline passed)."""
    passing = {v: r for v, r in results.items() if ran(r) and passed(r)}
    baseline = model["baseline"]
    base = passing.get(baseline)

    def speed(r: dict, size: int) -> dict:
        return at_batch(r["bench"]["metrics"], size)

    def tps_text(r: dict, size: int) -> str:
        return summary_cell(speed(r, size)["tokens_per_s"]).text + (" (busy host)" if busy_host(r["bench"]) else "")

    def ratio(r: dict, size: int) -> str:
        return speedup_text(speed(r, size)["tokens_per_s"]["median"], speed(base, size)["tokens_per_s"]["median"])

    single_rows, batch_rows = [], []
    for v in sorted(passing, key=lambda v: -speed(passing[v], 1)["tokens_per_s"]["median"]):
        r, m = passing[v], passing[v]["bench"]["metrics"]
        bound, share = roofline_cells(r, host)
        single_rows.append({
            "Engine": v, "Tokens/s": tps_text(r, 1), **({"× baseline": ratio(r, 1)} if base else {}),
            "Time to first token (ms): median; p90": latency_cell(speed(r, 1)["ttft_s"]).text,
            "Inter-token latency (ms): median; p90": latency_cell(speed(r, 1)["itl_s"]).text,
            "Decode tokens/s": summary_cell(m["decode_tokens_per_s_single"]).text,
            "Decode tokens/s, engine's counter": summary_cell(m["decode_tokens_per_s_single_engine"]).text
            if "decode_tokens_per_s_single_engine" in m else "no counter of its own",
            "Roofline bound (tokens/s)": bound, "% of bound": share, "Device": device_text(r["bench"]),
        })
    for v in sorted(passing, key=lambda v: -speed(passing[v], batch_size)["tokens_per_s"]["median"]):
        r = passing[v]
        batch_rows.append({
            "Engine": v, "Tokens/s": tps_text(r, batch_size),
            **({"× baseline": ratio(r, batch_size)} if base else {}),
            "× own batch 1": speedup_text(speed(r, batch_size)["tokens_per_s"]["median"],
                                          speed(r, 1)["tokens_per_s"]["median"]),
            "Time to first token (ms): median; p90": latency_cell(speed(r, batch_size)["ttft_s"]).text,
            "Inter-token latency (ms): median; p90": latency_cell(speed(r, batch_size)["itl_s"]).text,
        })
    left_out = [v for v, r in results.items() if ran(r) and not passed(r)]
    why_no_ratio = None if base else (f"the baseline `{baseline}` " + ("did not pass the quality gate"
                                                                       if ran(results[baseline]) else "did not run"))
    return {"single": table(single_rows), "batch": table(batch_rows) if batch_size != 1 else None,
            "left_out": left_out, "baseline": baseline, "why_no_ratio": why_no_ratio}


# --- cost -------------------------------------------------------------------------------------------

def build_text(results: dict) -> str:
    """Checkpoint conversion + engine build, once per build ('1 run'); a shared checkpoint says so."""
    parts = [(label, man["timings"][key]) for label, man, key in
             (("convert", results["checkpoint"], "checkpoint_s"), ("engine", results["engine"], "engine_s"))
             if man.get("work", True)]
    if not parts:
        return "no build step"
    shared = " shared" if results["checkpoint_shared"] else ""
    detail = ", ".join(f"{label} {fmt_number(s)}{shared if label == 'convert' else ''}" for label, s in parts)
    return f"{fmt_number(sum(s for _, s in parts))} (1 run: {detail})"


def disk_text(results: dict) -> str:
    """The engine's own files, plus the checkpoint it needs (shared with other engines where it is)."""
    ckpt, eng = results["checkpoint"], results["engine"]
    own = [m["artifact_bytes"] for m in (eng,) if m.get("work", True)]
    needs = [m["artifact_bytes"] for m in (ckpt,) if m.get("work", True)]
    if not own and not needs:
        return "none of its own (loads the snapshot)"
    if not own:
        return f"{fmt_number(needs[0] / MB)} (the checkpoint is the engine)"
    shared = " shared" if results["checkpoint_shared"] else ""
    return f"{fmt_number(own[0] / MB)}" + (f" (+{fmt_number(needs[0] / MB)}{shared} checkpoint)" if needs else "")


def compile_text(bench: dict) -> str:
    """A compiling engine's one-time compile and graph capture (its first run of each batch size), and
    whether torch captured CUDA graphs or skipped them (with torch's reason), as the bench recorded it."""
    metrics = bench["metrics"]
    if "compile_s" not in metrics:
        return "none"
    text = f"{fmt_number(metrics['compile_s']['value'])} (1 run)"
    graphs = (bench["engine_info"].get("compiled") or {}).get("cuda_graphs")
    if graphs is None:
        return text
    if graphs["skipped"]:
        reasons = "; ".join(graphs["skip_reasons"]) or "no reason logged"
        return f"{text}; CUDA graphs skipped {graphs['skipped']}×: {reasons}"
    return f"{text}; {graphs['captured']} CUDA graphs captured, none skipped"


def cost_section(results: dict[str, dict]) -> dict | None:
    """What each engine that ran costs, smallest weights first: memory, load, build, disk (the KV cache's
    bytes per token are measured at each context depth: depth_sections)."""
    rows = []
    built = [v for v, r in results.items() if ran(r)]
    for v in sorted(built, key=lambda v: results[v]["bench"]["engine_info"].get("weight_bytes") or float("inf")):
        r = results[v]
        m, weights = r["bench"]["metrics"], r["bench"]["engine_info"].get("weight_bytes")
        rows.append({
            "Engine": v if passed(r) else f"{v} ({r['verdict']['verdict']})",
            "Weights in memory (MB)": fmt_number(weights / MB) if weights else "not reported",
            "Peak memory (MB)": fmt_number(peak_bytes(m) / MB),
            "Load, cold (s)": summary_cell(m["load_s"]).text,
            "Build (s)": build_text(r),
            "Compile + graph capture (s)": compile_text(r["bench"]),
            "On disk (MB)": disk_text(r),
        })
    return table(rows)


# --- long context -----------------------------------------------------------------------------------

def kv_per_1k(entry: dict) -> str:
    kv = entry.get("kv_cache")
    return "not reported" if kv is None else f"{fmt_number(kv['bytes'] / entry['context_tokens'] * 1000 / MB)} MB"


def in_ms(summary: dict) -> dict:
    return {**summary, **{k: summary[k] * 1000 for k in ("median", "min", "max")}}


def depth_bound(results: dict, host: dict, entry: dict) -> str:
    """The decode bound with this context: bandwidth ÷ (weight bytes + the KV bytes the engine reports)."""
    info = results["bench"]["engine_info"]
    usable, bandwidth, where = bandwidth_for(results["bench"], host)
    if not usable:
        return f"not computed: {where}"
    if not info.get("weight_bytes") or bandwidth is None or entry.get("kv_cache") is None:
        return "not computed (weights, KV bytes or bandwidth unknown)"
    return fmt_number(bound_bandwidth(bandwidth) * 1e9 / (info["weight_bytes"] + entry["kv_cache"]["bytes"]))


def depth_sections(results: dict[str, dict], host: dict) -> dict:
    """At each context depth: what the KV cache takes and how quality holds late in long windows (every
    engine that ran), and prefill, time to first token and decode speed (passing engines only)."""
    memory_rows, speed_rows, how, failed = [], [], {}, []
    for variant, r in results.items():
        depths = r["bench"]["metrics"].get("depths") if ran(r) else None
        if not depths:
            continue
        depth = r["quality"].get("metrics", {}).get("depth", {})
        row = {"Engine": variant if passed(r) else f"{variant} ({r['verdict']['verdict']})",
               "KV cache": r["bench"]["describe"]["kv_cache"]}
        for entry in depths:
            row[f"KV cache per 1k tokens, depth {entry['depth']:,}"] = kv_per_1k(entry) \
                if entry["status"] == "ok" else "not run"
            if entry["status"] == "ok" and entry.get("kv_cache"):
                how.setdefault(entry["kv_cache"]["how"].split(":")[0], dict.fromkeys([]))[variant] = None
            elif entry["status"] != "ok":
                failed.append(f"`{variant}` at depth {entry['depth']:,}: {entry['reason']}")
        late = f"positions {depth['late_from']:,}+" if "late_from" in depth else "late"
        row.update({
            "Mean KL, early": f"{depth['kl_divergence_early']:.4f}" if "kl_divergence_early" in depth else "—",
            f"Mean KL, {late}": f"{depth['kl_divergence_late']:.4f}" if "kl_divergence_late" in depth else "—",
            "Top-1, early": f"{depth['top1_agreement_early']:.1%}" if "top1_agreement_early" in depth else "—",
            f"Top-1, {late}": f"{depth['top1_agreement_late']:.1%}" if "top1_agreement_late" in depth else "—",
        })
        memory_rows.append(row)
        if not passed(r):
            continue
        for entry in depths:
            if entry["status"] != "ok":
                continue
            speed_rows.append({
                "Engine": variant, "Depth (tokens)": f"{entry['depth']:,}",
                "Context (tokens)": f"{entry['context_tokens']:,}",
                "Prefill tokens/s": summary_cell(entry["prefill_tokens_per_s"]).text,
                "Time to first token (ms)": summary_cell(in_ms(entry["ttft_s"])).text,
                "Decode tokens/s": summary_cell(entry["decode_tokens_per_s"]).text,
                "Roofline bound (tokens/s)": depth_bound(r, host, entry),
            })
    quality = next((r["quality"]["metrics"]["depth"] for r in results.values()
                    if "window_tokens" in r["quality"].get("metrics", {}).get("depth", {})), None)
    return {"memory": table(memory_rows), "speed": table(speed_rows, keep=("Engine", "Depth (tokens)")),
            "how": [f"{source}: {', '.join(f'`{v}`' for v in variants)}" for source, variants in how.items()],
            "failed": failed, "quality": quality}


# --- appendix ---------------------------------------------------------------------------------------

def sweep_table(results: dict[str, dict]) -> dict | None:
    """Per passing engine and batch size: tokens/s, its gain over batch 1, time to first token and
    inter-token latency."""
    rows = []
    for variant, r in results.items():
        if not (ran(r) and passed(r)):
            continue
        sweep = r["bench"]["metrics"]["sweep"]  # smallest batch first
        for entry in sweep:
            rows.append({
                "Engine": variant, "Batch size": entry["batch_size"],
                "Tokens/s": summary_cell(entry["tokens_per_s"]).text,
                "× batch 1": speedup_text(entry["tokens_per_s"]["median"], sweep[0]["tokens_per_s"]["median"]),
                "Time to first token (ms): median; p90": latency_cell(entry["ttft_s"]).text,
                "Inter-token latency (ms): median; p90": latency_cell(entry["itl_s"]).text,
            })
    return table(rows, keep=("Engine", "Batch size"))


def history_section(model_dir: Path, results: dict[str, dict], batch_size: int) -> dict:
    """Across the runs of each passing engine recorded under the same conditions as this one: the
    figures whose spread exceeds the stable threshold (with their values), and how many were compared."""
    rows, compared = [], 0
    for variant, r in results.items():
        if not passed(r):
            continue
        spec = r["spec"]
        series = [("checkpoint", spec["checkpoint"], "checkpoint_s", "Convert / quantize (s)", 1),
                  ("engine", variant, "engine_s", "Engine build (s)", 1),
                  ("bench", variant, "tokens_per_s_batch1", "Tokens/s, single-stream", 1),
                  ("bench", variant, f"tokens_per_s_batch{batch_size}", f"Tokens/s, batch {batch_size}", 1),
                  ("bench", variant, "ttft_s_batch1", "Time to first token, single-stream (ms)", 1000),
                  ("bench", variant, "itl_s_batch1", "Inter-token latency, single-stream (ms)", 1000),
                  ("bench", variant, "load_s", "Engine load, cold (s)", 1)]
        for stage, name, key, label, scale in series:
            # Only runs under the same conditions (settings, sweep, prompts) as this one compare.
            values = [x["figures"][key] * scale
                      for x in history.records(model_dir, stage, name, history_conditions(r, stage))
                      if key in x["figures"]]
            spread = history.spread(values)
            if spread is None:
                continue
            compared += 1
            if spread > history.STABLE_SPREAD:
                rows.append({"Engine": variant, "Figure": label, "Runs": len(values),
                             "Values (oldest first)": ", ".join(fmt_number(v) for v in values),
                             "Spread": f"{spread:.1%}"})
    return {"table": table(rows, keep=("Engine", "Figure", "Runs")), "compared": compared, "unstable": len(rows),
            "threshold": f"{history.STABLE_SPREAD:.0%}"}


def divergence(reference: str, text: str) -> int:
    """Characters the two texts share from the start."""
    n = 0
    for a, b in zip(reference, text, strict=False):
        if a != b:
            break
        n += 1
    return n


def samples_section(prompts: list[str], results: dict[str, dict], reference: str) -> list[dict]:
    """Per prompt: the reference's answer once, then each engine's from where it departs from it."""
    ref = results.get(reference)
    ref_ok = ref is not None and ran(ref)
    sections = []
    for i, prompt in enumerate(prompts):
        ref_text = ref["samples"]["samples"][i]["text"].strip() if ref_ok else None
        rows = []
        for variant, r in results.items():
            if variant == reference and ref_ok or not ran(r):
                continue
            text = r["samples"]["samples"][i]["text"].strip()
            first = r["quality"].get("metrics", {}).get("first_divergence", [None] * len(prompts))[i] \
                if r["quality"].get("status") == "ok" else None
            if ref_text is None:
                rows.append({"Engine": variant, "First divergent token": "—", "Output": text or "(empty)"})
                continue
            if text == ref_text:
                rows.append({"Engine": variant, "First divergent token": "—", "Output": "(same as the reference)"})
                continue
            cut = divergence(ref_text, text)
            cut = text.rfind(" ", 0, cut) + 1 if " " in text[:cut] else 0  # back to a word start
            rows.append({"Engine": variant, "First divergent token": "—" if first is None else first,
                         "Output": ("…" if cut else "") + (text[cut:] or "(ends where the reference goes on)")})
        sections.append({"prompt": prompt, "reference": None if ref_text is None else ref_text.replace("\n", "<br>"),
                         "table": markdown_table(pd.DataFrame(rows)) if rows else None})
    return sections


def environment_table(results: dict[str, dict]) -> pd.DataFrame:
    """One row per environment field; where engines ran in different environments, each is named."""
    def flat(env: dict) -> dict:
        gpus = "; ".join(f"{g['name']} ({g['memory_bytes'] / 2**30:.0f} GiB, compute capability "
                         f"{g['compute_capability'][0]}.{g['compute_capability'][1]}, driver {g['driver']})"
                         for g in env["gpus"]) or "none"
        return {
            "Host": node_text(env), "CPU": f"{env['cpu']} ({env['cpu_cores']} cores)",
            "RAM": f"{env['ram_bytes'] / 2**30:.1f} GiB" if env["ram_bytes"] else "unknown",
            "GPU": gpus, "OS": env["os"], "Python": env["python"],
            "Libraries": ", ".join(f"{k} {v}" for k, v in env["libraries"].items()),
            "enginebench commit": env["enginebench_commit"] or "unknown (not a git checkout)",
        }

    flats = {v: flat(r["bench"]["environment"]) for v, r in results.items() if "environment" in r["bench"]}
    if not flats:
        return pd.DataFrame([{"Field": "—", "Value": "no engine ran"}])
    rows = []
    for key in next(iter(flats.values())):
        values = {v: f[key] for v, f in flats.items()}
        if len(set(values.values())) == 1:
            rows.append({"Field": key, "Value": next(iter(values.values()))})
        else:
            rows.append({"Field": key, "Value": "; ".join(f"{v}: {x}" for v, x in values.items())})
    return pd.DataFrame(rows)


def quality_settings(quality: dict, results: dict[str, dict]) -> dict:
    """Eval text and gate thresholds as the report states them."""
    scored = [r["quality"] for r in results.values() if r["quality"].get("status") == "ok"]
    gate = quality["gate"]
    return {
        "eval_text": scored[0]["eval_text"] if scored else "the eval text (no engine was scored against it)",
        "windows": quality["windows"], "window_tokens": quality["window_tokens"], "top_k": quality["top_k"],
        "thresholds": [f"{label} {'≤' if op == '<=' else '≥'} {gate[key]:g}{unit}"
                       for key, (_, op, label, unit) in CHECKS.items() if gate.get(key) is not None],
        "logits_engines": [f"`{variant}` (`{r['quality']['logits_engine']}`)" for variant, r in results.items()
                           if "logits_engine" in r["quality"]],
    }


def disk_summary(snapshot_dir: Path, snapshot: dict, variants: list[dict], results: dict[str, dict],
                 preflight: dict) -> dict:
    """The configuration's estimated disk need, what this run built (each shared checkpoint once),
    and the free disk the preflight saw."""
    # Recorded by the snapshot stage; a manifest written before it recorded them: counted from the weights
    # (a placeholder's provenance has them), or not known where only the result files are kept.
    parameters = snapshot.get("parameters") or snapshot["provenance"].get("parameters") or parameter_count(snapshot_dir)
    built = {**{("checkpoint", s["checkpoint"]): results[s["slug"]]["checkpoint"] for s in variants},
             **{("engine", s["slug"]): results[s["slug"]]["engine"] for s in variants}}
    written = sum(m.get("artifact_bytes", 0) for m in built.values() if m.get("status", "ok") == "ok")
    need = (f"estimated need of the configuration {configured_need(variants, parameters) / 1e9:.2f} GB "
            f"({parameters / 1e6:,.0f} M parameters × each format's bytes per weight)" if parameters else
            "the configuration's need is not estimated (the snapshot's manifest does not record its parameter "
            "count and its weights are not here)")
    free = preflight["disk"]["free_bytes"]
    return {"need": need, "written_gb": f"{written / 1e9:.2f}", "free_gb": f"{free / 1e9:.1f}"}


def preflight_lines(preflight: dict) -> list[str]:
    env, bw = preflight["environment"], preflight["bandwidth"]

    def rate(b: dict) -> str:
        load, others = b.get("host_load"), b.get("gpu_processes")
        idle = ("" if load is None or load["busy"] is None else
                f"; measured while other processes used {load['other_share']:.0%} of the CPU, after "
                f"{b['attempts']} attempts: the bounds below may be too low" if load["busy"] else
                f"; idle host (others used {load['other_share']:.0%} of the CPU)")
        if others:
            named = ", ".join(f"{p['name']} (pid {p['pid']})" for p in others)
            idle += f"; other processes on the GPU: {named}: the bounds below may be too low"
        elif others == []:
            idle += "; no other process on the GPU"
        return (f"{bound_bandwidth(b):.1f} GB/s, the best of n={b['n']} (median {b['median']:.1f}, "
                f"min {b['min']:.1f}; {b['method']}){idle}")

    gpus = "; ".join(f"{g['name']}, {g['memory_bytes'] / 2**30:.0f} GiB, compute capability "
                     f"{g['compute_capability'][0]}.{g['compute_capability'][1]} (FP8: {'yes' if g['fp8'] else 'no'}), "
                     f"driver {g['driver']}" for g in preflight["gpus"]) or "none"
    return [f"Node: {node_text(env)}",
            f"CPU: {env['cpu']} ({env['cpu_cores']} cores); RAM {env['ram_bytes'] / 2**30:.1f} GiB"
            if env["ram_bytes"] else f"CPU: {env['cpu']} ({env['cpu_cores']} cores)",
            f"Free disk under `{preflight['disk']['path']}`: {preflight['disk']['free_bytes'] / 1e9:.1f} GB",
            f"GPUs: {gpus}",
            f"Memory bandwidth, host: {rate(bw['host'])}",
            "Memory bandwidth, device: " + (rate(bw["device"]) if bw["device"] else "no GPU")]


def render_report(layout: dict, root: Path) -> str:
    root = Path(root)
    preflight = records.read(root / paths.PREFLIGHT, "preflight")
    largest = max(layout["bench"]["batch_sizes"])
    models, unfetchable = [], []
    for mcfg in layout["models"]:
        model = mcfg["slug"]
        if "unfetchable" in mcfg:  # none of its jobs ran (Plan.unfetchable)
            unfetchable.append({"slug": model, "reason": mcfg["unfetchable"]})
            continue
        model_dir = root / "results" / model
        snapshot = records.read(root / paths.SNAPSHOT.format(model=model) / paths.MANIFEST, "snapshot")
        model_config = read_json(root / paths.SNAPSHOT.format(model=model) / "config.json")
        results = load_results(root, model, mcfg["variants"], layout["quality"]["gate"])
        host = {**preflight, "model_config": model_config}
        benches = [r["bench"] for r in results.values() if ran(r)]
        models.append({
            "slug": model,
            "answer": answer_lines(findings.answer(results, model_dir, largest), largest, mcfg["speed_only"]),
            "speed_only": mcfg["speed_only"],
            "source": snapshot["source"],
            "provenance": snapshot["provenance"],
            "snapshot_mb": fmt_number(snapshot["total_bytes"] / MB),
            "snapshot_s": fmt_number(snapshot["timings"]["import_s"]),
            "disk": disk_summary(root / paths.SNAPSHOT.format(model=model), snapshot, mcfg["variants"], results,
                                 preflight),
            "reference": mcfg["reference"],
            "quality": quality_section(results),
            "quality_settings": quality_settings(layout["quality"], results),
            "speed": speed_sections(mcfg, results, host, largest),
            "cost": cost_section(results),
            "depth": depth_sections(results, host),
            "not_built": [{"variant": v, "status": r["status"][0], "reason": r["status"][1], "would_run": would_run(r)}
                          for v, r in results.items() if not ran(r)],
            "figures": [{"path": Path(paths.FIGURE.format(model=model, figure=name)).relative_to("results").as_posix(),
                         "title": title} for name, title in FIGURES.items()],
            "sweep": sweep_table(results),
            "history": history_section(model_dir, results, largest),
            "threads": benches[0]["threads"] if benches else None,
            "prompt_tokens": benches[0]["prompt_tokens"] if benches else [],
            "chat_template": benches[0]["uses_chat_template"] if benches else False,
            "samples": samples_section(layout["prompts"], results, mcfg["reference"]),
            "environment": markdown_table(environment_table(results)),
            "files": sorted(str(p.relative_to(root)) for p in model_dir.glob("*/*.json")),
        })
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      undefined=StrictUndefined, keep_trailing_newline=True)
    return env.get_template("report.md.j2").render(
        title=layout["title"], models=models, unfetchable=unfetchable, bench=layout["bench"], largest=largest,
        samples_max_new_tokens=layout["samples"]["max_new_tokens"],
        generated=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        preflight=preflight_lines(preflight),
    )
