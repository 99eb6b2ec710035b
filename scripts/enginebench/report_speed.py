"""The report's speed, cost and long-context sections, laid out from the records and the findings."""

from __future__ import annotations

from .bench import at_batch
from .columns import Row, bandwidth_for, engine_with_verdict, notes, row
from .findings import passed, ran, speed_shown
from .report_cells import MB, fmt_number, summary_cell, table, thousandths


def speed_sections(model: dict, results: dict[str, dict], host: dict, batch_size: int) -> dict:
    """One table for one request at a time and one for the largest batch: passing engines only,
    fastest first, with tokens/s ÷ the baseline's (where the baseline passed)."""
    passing = speed_shown(results)
    baseline = model["baseline"]
    base = passing.get(baseline)
    leave_out = () if base else ("x_baseline",)

    def section(name: str, size: int) -> dict | None:
        def at(r: dict | None) -> dict | None:
            return r and at_batch(r["bench"]["metrics"], size)

        order = sorted(passing, key=lambda v: -at(passing[v])["tokens_per_s"]["median"])
        sources = [Row(v, passing[v], host, at(passing[v]), at(base), at_batch(passing[v]["bench"]["metrics"], 1))
                   for v in order]
        return table([row(name, source, leave_out) for source in sources], notes=notes(name, sources))

    left_out = [v for v, r in results.items() if ran(r) and not passed(r)]
    why_no_ratio = None if base else (f"the baseline `{baseline}` " + ("did not pass the quality gate"
                                                                       if ran(results[baseline]) else "did not run"))
    return {"single": section("single", 1), "batch": section("batch", batch_size) if batch_size != 1 else None,
            "left_out": left_out, "baseline": baseline, "why_no_ratio": why_no_ratio}


def cost_section(results: dict[str, dict]) -> dict | None:
    """What each engine that ran costs, smallest weights first: memory, load, build, disk (the KV cache's
    bytes per token are measured at each context depth: depth_sections)."""
    built = [v for v, r in results.items() if ran(r)]
    order = sorted(built, key=lambda v: results[v]["bench"]["engine_info"].get("weight_bytes") or float("inf"))
    return table([row("cost", Row(v, results[v])) for v in order])


def kv_per_1k(entry: dict) -> str:
    kv = entry.get("kv_cache")
    return "not reported" if kv is None else f"{fmt_number(kv['bytes'] / entry['context_tokens'] * 1000 / MB)} MB"


def depth_bound(results: dict, host: dict, entry: dict) -> str:
    """The decode bound with this context: bandwidth ÷ (weight bytes + the KV bytes the engine reports)."""
    info = results["bench"]["engine_info"]
    usable, bandwidth, where, _ = bandwidth_for(results["bench"], host)
    if not usable:
        return f"not computed: {where}"
    if not info.get("weight_bytes") or bandwidth is None or entry.get("kv_cache") is None:
        return "not computed (weights, KV bytes or bandwidth unknown)"
    return fmt_number(bandwidth * 1e9 / (info["weight_bytes"] + entry["kv_cache"]["bytes"]))


def depth_sections(results: dict[str, dict], host: dict) -> dict:
    """At each context depth: what the KV cache takes and how quality holds late in long windows (every
    engine that ran), and prefill, time to first token and decode speed (passing engines only)."""
    memory_rows, speed_rows, how, failed = [], [], {}, []
    for variant, r in results.items():
        depths = r["bench"]["metrics"].get("depths") if ran(r) else None
        if not depths:
            continue
        depth = r["quality"].get("metrics", {}).get("depth", {})
        memory = {"Engine": engine_with_verdict(Row(variant, r)), "KV cache": r["bench"]["describe"]["kv_cache"]}
        for entry in depths:
            memory[f"KV cache per 1k tokens, depth {entry['depth']:,}"] = kv_per_1k(entry) \
                if entry["status"] == "ok" else "not run"
            if entry["status"] == "ok" and entry.get("kv_cache"):
                how.setdefault(entry["kv_cache"]["how"].split(":")[0], dict.fromkeys([]))[variant] = None
            elif entry["status"] != "ok":
                failed.append(f"`{variant}` at depth {entry['depth']:,}: {entry['reason']}")
        late = f"positions {depth['late_from']:,}+" if "late_from" in depth else "late"
        memory.update({
            "Mean KL, early": f"{depth['kl_divergence_early']:.4f}" if "kl_divergence_early" in depth else "—",
            f"Mean KL, {late}": f"{depth['kl_divergence_late']:.4f}" if "kl_divergence_late" in depth else "—",
            "Top-1, early": f"{depth['top1_agreement_early']:.1%}" if "top1_agreement_early" in depth else "—",
            f"Top-1, {late}": f"{depth['top1_agreement_late']:.1%}" if "top1_agreement_late" in depth else "—",
        })
        memory_rows.append(memory)
        if not passed(r):
            continue
        for entry in depths:
            if entry["status"] != "ok":
                continue
            speed_rows.append({
                "Engine": variant, "Depth (tokens)": f"{entry['depth']:,}",
                "Context (tokens)": f"{entry['context_tokens']:,}",
                "Prefill tokens/s": summary_cell(entry["prefill_tokens_per_s"]).text,
                "Time to first token (ms)": summary_cell(thousandths(entry["ttft_s"])).text,
                "Decode tokens/s": summary_cell(entry["decode_tokens_per_s"]).text,
                "Roofline bound (tokens/s)": depth_bound(r, host, entry),
            })
    quality = next((r["quality"]["metrics"]["depth"] for r in results.values()
                    if "window_tokens" in r["quality"].get("metrics", {}).get("depth", {})), None)
    return {"memory": table(memory_rows), "speed": table(speed_rows, keep=("Engine", "Depth (tokens)")),
            "how": [f"{source}: {', '.join(f'`{v}`' for v in variants)}" for source, variants in how.items()],
            "failed": failed, "quality": quality}
