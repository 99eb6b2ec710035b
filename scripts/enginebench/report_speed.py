"""The report's speed, cost and long-context sections, laid out from the records and the findings."""

from __future__ import annotations

from .bench import at_batch
from .findings import busy_host, passed, peak_bytes, ran
from .report_cells import MB, fmt_number, latency_cell, speedup_text, summary_cell, table
from .roofline import bound_bandwidth
from .scheduler import bandwidth_source


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
