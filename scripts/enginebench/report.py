"""Render results/report.md from the result JSONs (through pandas and a StrictUndefined Jinja template).

Every number shown comes from a result file of this run, with its unit and spread; a value that was
not measured shows why.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from . import paths
from .bench import at_batch
from .disk import configured_need, parameter_count
from .figures import FIGURES
from .io import read_json
from .quality import CHECKS, verdict
from .scheduler import bandwidth_source, node_text

MB = 1e6
SECTIONS = ["Build pipeline", "Artifacts", "Runtime", "Output quality"]


@dataclass(frozen=True)
class Cell:
    text: str
    value: float | None = None  # numeric value used for the delta column
    struck: bool = False  # a speed figure of an engine without a quality PASS: not to be quoted


@dataclass(frozen=True)
class Metric:
    section: str
    label: str
    higher_is_better: bool | None  # None: no delta (e.g. text rows)


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


def stage_cell(manifest: dict, key: str, shared: bool = False) -> Cell:
    if not manifest.get("work", True):
        return Cell("no stage")
    seconds = manifest["timings"][key]
    return Cell(f"{fmt_number(seconds)} (1 run{', shared' if shared else ''})", seconds)


def size_cell(manifest: dict) -> Cell:
    if not manifest.get("work", True):
        return Cell("no artifact")
    return Cell(fmt_number(manifest["artifact_bytes"] / MB), manifest["artifact_bytes"] / MB)


def delta_text(value: float | None, baseline: float | None) -> str:
    """'+63 % (1.63×)' or '−45 % (1.84×)': change against the baseline, and the factor either way."""
    if value is None or baseline is None or baseline == 0 or value == 0:
        return "—"
    change = value / baseline - 1
    factor = max(value / baseline, baseline / value)
    sign = "+" if change >= 0 else "−"
    return f"{sign}{abs(change) * 100:.0f} % ({factor:.2f}×)"


def parity_cell(parity: dict) -> Cell:
    if not parity["checked"]:
        return Cell("n/a (fed the snapshot's ids)")
    if parity["equal"]:
        return Cell(f"equal ({parity['texts']} texts)")
    return Cell(f"DIFFERS ({len(parity['mismatches'])} of {parity['texts']} texts)")


def passed(results: dict) -> bool:
    return results["verdict"]["verdict"] == "PASS"


def short_status(status: str) -> str:
    """A table cell for an engine that did not run; the reason is listed once, under "Not measured"."""
    return {"unavailable": "not built on this host (see Not measured)"}.get(status, f"{status} (see Not measured)")


def verdict_text(verdict: dict, *, is_reference: bool = False, built: bool = True) -> str:
    """PASS, FAIL with every missed threshold, or why there is no verdict (briefly for an engine that
    was not built: the failed stage is listed once, under "Not measured")."""
    if verdict["verdict"] == "PASS":
        return "PASS (reference: self-check)" if is_reference else "PASS"
    if verdict["verdict"] == "NOT RUN":
        return "NOT RUN (not built on this host)"
    if verdict["verdict"] == "NO VERDICT" and not built:
        return "NO VERDICT (not built, see Not measured)"
    return f"{verdict['verdict']}: {'; '.join(verdict['reasons'])}"


def guarded(cell: Cell, results: dict) -> Cell:
    """A speed figure of an engine without a PASS, struck through so nobody quotes it."""
    if passed(results):
        return cell
    return Cell(f"~~{cell.text}~~ (quality {results['verdict']['verdict']})", cell.value, struck=True)


def delta_cell(cell: Cell | None, base: Cell | None) -> str:
    text = delta_text(cell.value, base.value) if cell and base else "—"
    return f"~~{text}~~" if cell and cell.struck and text != "—" else text


def quality_cells(results: dict) -> dict[Metric, Cell]:
    section, quality = "Output quality", results["quality"]
    cells = {Metric(section, "Quality verdict", None):
             Cell(verdict_text(results["verdict"], is_reference=quality.get("is_reference", False)))}
    if quality.get("status") != "ok":
        return cells
    m = quality["metrics"]
    if "perplexity" in m:
        cells.update({
            Metric(section, "Perplexity on the eval text", False):
                Cell(f"{fmt_number(m['perplexity'])} ({m['perplexity_ratio']:.3f}× reference, "
                     f"{m['scored_tokens']:,} tokens)", m["perplexity"]),
            Metric(section, "KL divergence from reference (nats), mean; p99", None):
                Cell(f"{m['kl_divergence_mean']:.4f}; {m['kl_divergence_p99']:.3f}"),
            Metric(section, "Top-1 agreement with reference", None): Cell(f"{m['top1_agreement']:.1%}"),
        })
    else:
        cells[Metric(section, "Perplexity on the eval text", False)] = Cell(f"not measured: {m['logits']}")
    divergence = ", ".join("—" if d is None else str(d) for d in m["first_divergence"])
    cells.update({
        Metric(section, "Greedy agreement with reference samples (first divergence per prompt)", None):
            Cell(f"{m['greedy_agreement']:.1%} ({divergence})"),
        Metric(section, "Repeated 4-gram share in samples (reference's)", None):
            Cell(f"{m['repeated_ngram_share']:.1%} ({m['reference_repeated_ngram_share']:.1%})"),
    })
    return cells


def roofline_cells(results: dict, host: dict) -> dict[Metric, Cell]:
    """The decode bound from the measured bandwidth and the engine's bytes per token, and the
    engine's single-stream decode speed as a share of it."""
    from .roofline import decode_bound, decode_context, kv_bytes_per_token

    bench = results["bench"]
    m, info = bench["metrics"], bench["engine_info"]
    on_gpu = str(info.get("device", "cpu")).startswith("cuda")
    bandwidth = host["bandwidth"]["device" if on_gpu else "host"]
    usable, where = bandwidth_source(bench["environment"], host["environment"])
    if not usable:
        return {Metric("Runtime", "Roofline: decode bound (tokens/s)", None): Cell(f"not computed: {where}")}
    kv = kv_bytes_per_token(host["model_config"], bench["describe"]["kv_cache"])
    if not info.get("weight_bytes") or bandwidth is None or kv is None:
        return {Metric("Runtime", "Roofline: decode bound (tokens/s)", None): Cell("not computed (weights, KV "
                                                                                  "layout or bandwidth unknown)")}
    bound = decode_bound(bandwidth["median"], info["weight_bytes"], kv, decode_context(bench))
    speed = m["decode_tokens_per_s_single"]["median"]
    return {
        Metric("Runtime", "Roofline: decode bound, single-stream (tokens/s)", True):
            Cell(f"{fmt_number(bound['tokens_per_s'])} ({bound['bytes_per_token'] / MB:,.0f} MB/token)",
                 bound["tokens_per_s"]),
        Metric("Runtime", "Roofline: single-stream decode, % of bound", None):
            Cell(f"{speed / bound['tokens_per_s']:.0%}" + (f" ({where})" if where else "")),
    }


def device_text(bench: dict) -> str:
    """Where the engine ran, as the engine itself reported it (llama.cpp: read back from its load log)."""
    if bench.get("status", "ok") != "ok":
        return "—"
    info = bench["engine_info"]
    device = str(info.get("device", "not reported"))
    if device.startswith("cuda"):
        gpu = info.get("device_name") or next(iter(bench["environment"]["gpus"]), {}).get("name")
        return f"{device} ({gpu})" if gpu else device
    return device


def compile_cells(metrics: dict) -> dict[Metric, Cell]:
    """A compiling engine's one-time compile and graph capture (its first run of each batch size)."""
    if "compile_s" not in metrics:
        return {}
    seconds = metrics["compile_s"]["value"]
    return {Metric("Runtime", "Compile + graph capture, first run of each batch size (s)", False):
            Cell(f"{fmt_number(seconds)} (1 run)", seconds)}


def batched_metric(batch_size: int) -> Metric:
    return Metric("Runtime", f"Tokens/s, batch {batch_size}", True)


def engine_cells(results: dict, host: dict) -> dict[Metric, Cell]:
    """The comparison-table cells of one engine, from its manifests, bench and quality results."""
    ckpt, eng, bench = results["checkpoint"], results["engine"], results["bench"]
    if bench.get("status", "ok") != "ok":
        return {}
    m = bench["metrics"]
    single, largest = at_batch(m, 1), at_batch(m)
    stage_times = [t for man, key in ((ckpt, "checkpoint_s"), (eng, "engine_s"))
                   if man.get("work", True) for t in [man["timings"][key]]]
    weights = bench["engine_info"].get("weight_bytes")
    peak = m["peak_device_bytes"]["value"] or m["peak_rss_bytes"]["value"]
    return {
        Metric("Build pipeline", "Convert / quantize (s)", False):
            stage_cell(ckpt, "checkpoint_s", shared=results["checkpoint_shared"]),
        Metric("Build pipeline", "Engine build (s)", False): stage_cell(eng, "engine_s"),
        Metric("Build pipeline", "Total build (s)", False):
            Cell(f"{fmt_number(sum(stage_times))} (1 run)", sum(stage_times)) if stage_times else Cell("no stage"),
        Metric("Artifacts", "Checkpoint size (MB)", False): size_cell(ckpt),
        Metric("Artifacts", "Engine size (MB)", False): size_cell(eng),
        Metric("Artifacts", "Weights in memory (MB)", False):
            Cell(fmt_number(weights / MB), weights / MB) if weights else Cell("not reported"),
        Metric("Runtime", "Device (read back from the engine)", None): Cell(device_text(bench)),
        Metric("Runtime", "Engine load, cold (s)", False): summary_cell(m["load_s"]),
        **compile_cells(m),
        Metric("Runtime", "Tokens/s, single-stream", True): guarded(summary_cell(single["tokens_per_s"]), results),
        batched_metric(largest["batch_size"]): guarded(summary_cell(largest["tokens_per_s"]), results),
        Metric("Runtime", "Time to first token, single-stream (ms): median; p90", False):
            latency_cell(single["ttft_s"]),
        Metric("Runtime", "Inter-token latency, single-stream (ms): median; p90", False):
            latency_cell(single["itl_s"]),
        Metric("Runtime", "Decode tokens/s, single-stream, our clock", True):
            summary_cell(m["decode_tokens_per_s_single"]),
        Metric("Runtime", "Decode tokens/s, single-stream, engine's own counter", True):
            summary_cell(m["decode_tokens_per_s_single_engine"]) if "decode_tokens_per_s_single_engine" in m
            else Cell("no counter of its own"),
        Metric("Runtime", "Peak memory (MB)", False): Cell(fmt_number(peak / MB), peak / MB),
        **roofline_cells(results, host),
        **quality_cells(results),
        Metric("Output quality", "Tokenizer parity with the snapshot", None): parity_cell(bench["tokenizer_parity"]),
    }


def status_of(results: dict) -> tuple[str, str]:
    """("ok", "") or the status and reason of the first stage that did not produce its artifact."""
    for key in ("checkpoint", "engine", "bench", "samples"):
        record = results[key]
        if record.get("status", "ok") != "ok":
            return record["status"], f"{key}: {record['reason']}"
    return "ok", ""


def would_run(results: dict) -> list[str]:
    """The commands recorded by the stages that could not run on this host."""
    return [f"{key}: {results[key]['would_run']}" for key in ("checkpoint", "engine") if results[key].get("would_run")]


def predicted_table(results: dict[str, dict]) -> str | None:
    """Quality figures of the stand-ins (ModelOpt fake-quant) next to the real engines' where both ran."""
    rows = []
    for variant, r in results.items():
        if "predicted" not in r:
            continue
        for label, record, result in ((f"{variant}: predicted by {r['predicted']['by']}", r["predicted"]["record"],
                                       r["predicted"]["verdict"]), (variant, r["quality"], r["verdict"])):
            m = record.get("metrics", {})
            rows.append({
                "Engine": label,
                "Perplexity ratio": f"{m['perplexity_ratio']:.3f}" if "perplexity_ratio" in m else "—",
                "Mean KL (nats)": f"{m['kl_divergence_mean']:.4f}" if "kl_divergence_mean" in m else "—",
                "Top-1": f"{m['top1_agreement']:.1%}" if "top1_agreement" in m else "—",
                "Greedy agreement": f"{m['greedy_agreement']:.1%}" if "greedy_agreement" in m else "—",
                "Repeated 4-grams": f"{m['repeated_ngram_share']:.1%}" if "repeated_ngram_share" in m else "—",
                "Verdict": verdict_text(result, built=record.get("status") == "ok"),
            })
    return markdown_table(pd.DataFrame(rows)) if rows else None


def column_head(variant: str, baseline: str, status: str) -> str:
    head = f"{variant} (baseline)" if variant == baseline else variant
    return head if status == "ok" else f"{head} ({status})"


def comparison_table(model: dict, cells: dict[str, dict], status: dict[str, tuple]) -> pd.DataFrame:
    """Rows: metrics; columns: variants, then one delta column per non-baseline variant."""
    baseline = model["baseline"]
    metrics = list(dict.fromkeys(m for c in cells.values() for m in c))
    metrics.sort(key=lambda m: SECTIONS.index(m.section))  # stable: keeps the order within a section
    rows = []
    for metric in metrics:
        row = {"Metric": f"{metric.section}: {metric.label}"}
        for variant in cells:
            row[column_head(variant, baseline, status[variant][0])] = cells[variant].get(metric, Cell("—")).text
        for variant in cells:
            if variant == baseline:
                continue
            base, cell = cells[baseline].get(metric), cells[variant].get(metric)
            row[f"Δ {variant} vs {baseline}"] = delta_cell(cell, base) if metric.higher_is_better is not None else "—"
        rows.append(row)
    return pd.DataFrame(rows)


def engines_table(model: dict, cells: dict[str, dict], status: dict[str, tuple],
                  results: dict[str, dict], batch_size: int) -> pd.DataFrame:
    """The compact cross-engine view: | Engine | Quantization | KV cache | Device | Tokens/s | vs baseline |
    Quality |."""
    baseline = model["baseline"]
    tokens_per_s = batched_metric(batch_size)
    base_tps = cells[baseline].get(tokens_per_s)
    rows = []
    for spec in model["variants"]:
        variant = spec["slug"]
        tps = cells[variant].get(tokens_per_s)
        rows.append({
            "Engine": f"{variant} ({spec['backend']})",
            "Quantization": spec["describe"]["quantization"],
            "KV cache": spec["describe"]["kv_cache"],
            "Device": device_text(results[variant]["bench"]),
            f"Tokens/s (batch {batch_size})": (tps.text + (" (busy host)" if busy_host(results[variant]["bench"])
                                                           else "")) if tps else short_status(status[variant][0]),
            "vs baseline": "baseline" if variant == baseline else delta_cell(tps, base_tps),
            "Quality": verdict_text(results[variant]["verdict"], built=status[variant][0] == "ok",
                                    is_reference=results[variant]["quality"].get("is_reference", False)),
        })
        if (predicted := results[variant].get("predicted")) is not None:
            rows.append({**rows[-1], "Engine": f"{variant}: predicted by {predicted['by']}",
                         f"Tokens/s (batch {batch_size})": "— (a stand-in for quality only, no speed)",
                         "vs baseline": "—",
                         "Quality": verdict_text(predicted["verdict"])})
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame) -> str:
    def esc(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", "<br>")

    lines = ["| " + " | ".join(esc(c) for c in frame.columns) + " |",
             "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


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


def load_results(root: Path, model: str, variants: list[dict], thresholds: dict) -> dict[str, dict]:
    checkpoints = [spec["checkpoint"] for spec in variants]
    results = {}
    for spec in variants:
        variant = spec["slug"]
        ckpt_dir = root / paths.CHECKPOINT.format(model=model, checkpoint=spec["checkpoint"])
        results[variant] = {
            "checkpoint": read_json(ckpt_dir / paths.MANIFEST),
            "checkpoint_shared": checkpoints.count(spec["checkpoint"]) > 1,
            "engine": read_json(root / paths.ENGINE.format(model=model, variant=variant) / paths.MANIFEST),
            "bench": read_json(root / paths.BENCH.format(model=model, variant=variant)),
            "samples": read_json(root / paths.SAMPLES.format(model=model, variant=variant)),
            "quality": read_json(root / paths.QUALITY.format(model=model, variant=variant)),
        }
        results[variant]["verdict"] = verdict(results[variant]["quality"], thresholds)
        if spec["predicted_by"]:
            predicted = read_json(root / paths.PREDICTED.format(model=model, variant=variant))
            results[variant]["predicted"] = {"by": spec["predicted_by"], "record": predicted,
                                             "verdict": verdict(predicted, thresholds)}
    return results


def samples_tables(prompts: list[str], results: dict[str, dict], status: dict[str, tuple]) -> list[dict]:
    tables = []
    for i, prompt in enumerate(prompts):
        rows = []
        for variant, r in results.items():
            state, _ = status[variant]
            if state == "ok":
                sample = r["samples"]["samples"][i]
                rows.append({"Variant": variant, "Output": sample["text"].strip() or "(empty)",
                             "Tokens": len(sample["output_ids"])})
            else:
                rows.append({"Variant": variant, "Output": f"({short_status(state)})", "Tokens": "—"})
        tables.append({"prompt": prompt, "table": markdown_table(pd.DataFrame(rows))})
    return tables


def recommendation(cells: dict[str, dict], results: dict[str, dict], batch_size: int) -> dict:
    """The engines that pass the gate, fastest (median tokens/s at the largest batch) first, and the
    fastest of them single-stream (the two differ where batching helps some engines more)."""
    def ranking(metric: Metric) -> list[dict]:
        passing = sorted(((c[metric].value, v) for v, c in cells.items() if metric in c and passed(results[v])),
                         reverse=True)
        return [{"variant": v, "tokens_per_s": fmt_number(tps)} for tps, v in passing]

    single = ranking(Metric("Runtime", "Tokens/s, single-stream", True))
    ranked = ranking(batched_metric(batch_size))
    busy = [f"`{v}` ({busy_host(results[v]['bench']):.0%} of the CPU)" for v in (r["variant"] for r in ranked)
            if busy_host(results[v]["bench"])]
    return {"ranked": ranked, "single_stream": single[0] if single and not busy else None, "busy": busy,
            "failed": [v for v, r in results.items() if r["verdict"]["verdict"] == "FAIL"]}


def busy_host(bench: dict) -> float | None:
    """The share of the host's CPU other processes used while this bench measured, where that made the
    host busy (enginebench.hostload), else None."""
    load = bench.get("host_load")
    return load["other_share"] if load and load["busy"] else None


def quality_settings(quality: dict, results: dict[str, dict]) -> dict:
    """Eval text and gate thresholds as the report states them."""
    ran = [r["quality"] for r in results.values() if r["quality"].get("status") == "ok"]
    gate = quality["gate"]
    return {
        "eval_text": ran[0]["eval_text"] if ran else "not scored",
        "windows": quality["windows"], "window_tokens": quality["window_tokens"], "top_k": quality["top_k"],
        "thresholds": [f"{label} {'≤' if op == '<=' else '≥'} {gate[key]:g}{unit}"
                       for key, (_, op, label, unit) in CHECKS.items() if gate.get(key) is not None],
        "logits_engines": [f"`{variant}` (`{r['quality']['logits_engine']}`)" for variant, r in results.items()
                           if "logits_engine" in r["quality"]],
    }


def sweep_table(results: dict[str, dict], status: dict[str, tuple]) -> str | None:
    """Per engine and batch size: tokens/s (struck without a quality PASS), its gain over batch 1,
    time to first token and inter-token latency."""
    rows = []
    for variant, r in results.items():
        if status[variant][0] != "ok":
            continue
        sweep = r["bench"]["metrics"]["sweep"]  # smallest batch first
        for entry in sweep:
            tps = guarded(summary_cell(entry["tokens_per_s"]), r)
            rows.append({
                "Engine": variant, "Batch size": entry["batch_size"], "Tokens/s": tps.text,
                "vs batch 1": "—" if entry is sweep[0] else delta_cell(tps, summary_cell(sweep[0]["tokens_per_s"])),
                "Time to first token (ms): median; p90": latency_cell(entry["ttft_s"]).text,
                "Inter-token latency (ms): median; p90": latency_cell(entry["itl_s"]).text,
            })
    return markdown_table(pd.DataFrame(rows)) if rows else None


def history_table(root: Path, model: str, variants: list[dict], batch_size: int) -> str | None:
    """Per engine, each figure across every recorded run: runs, range, spread, and whether it is stable."""
    from . import history

    model_dir = root / "results" / model
    rows = []
    for spec in variants:
        series = [("checkpoint", spec["checkpoint"], "checkpoint_s", "Convert / quantize (s)", 1),
                  ("engine", spec["slug"], "engine_s", "Engine build (s)", 1),
                  ("bench", spec["slug"], "tokens_per_s_batch1", "Tokens/s, single-stream", 1),
                  ("bench", spec["slug"], f"tokens_per_s_batch{batch_size}", f"Tokens/s, batch {batch_size}", 1),
                  ("bench", spec["slug"], "ttft_s_batch1", "Time to first token, single-stream (ms)", 1000),
                  ("bench", spec["slug"], "itl_s_batch1", "Inter-token latency, single-stream (ms)", 1000),
                  ("bench", spec["slug"], "load_s", "Engine load, cold (s)", 1)]
        for stage, name, key, label, scale in series:
            # Records from before a figure existed (or from another batch sweep) do not carry it.
            values = [r["figures"][key] * scale for r in history.records(model_dir, stage, name) if key in r["figures"]]
            if not values:
                continue
            spread = history.spread(values)
            rows.append({
                "Engine": spec["slug"], "Metric": label, "Runs": len(values),
                "Values (oldest first)": ", ".join(fmt_number(v) for v in values),
                "Spread": "—" if spread is None else f"{spread:.1%}",
                "Stable": "—" if spread is None else "yes" if spread <= history.STABLE_SPREAD else "no",
            })
    return markdown_table(pd.DataFrame(rows)) if rows else None


def disk_summary(snapshot: Path, variants: list[dict], results: dict[str, dict], preflight: dict) -> dict:
    """The configuration's estimated disk need, what this run built (each shared checkpoint once),
    and the free disk the preflight saw."""
    parameters = parameter_count(snapshot)
    built = {**{("checkpoint", s["checkpoint"]): results[s["slug"]]["checkpoint"] for s in variants},
             **{("engine", s["slug"]): results[s["slug"]]["engine"] for s in variants}}
    written = sum(m.get("artifact_bytes", 0) for m in built.values() if m.get("status", "ok") == "ok")
    return {"need_gb": f"{configured_need(variants, parameters) / 1e9:.2f}", "parameters": f"{parameters / 1e6:,.0f} M",
            "written_gb": f"{written / 1e9:.2f}", "free_gb": f"{preflight['disk']['free_bytes'] / 1e9:.1f}"}


def preflight_lines(preflight: dict) -> list[str]:
    env, bw = preflight["environment"], preflight["bandwidth"]

    def rate(b: dict) -> str:
        return f"{b['median']:.1f} GB/s ({b['min']:.1f}–{b['max']:.1f}, n={b['n']}; {b['method']})"

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
    preflight = read_json(root / paths.PREFLIGHT)
    models, unfetchable = [], []
    for mcfg in layout["models"]:
        model = mcfg["slug"]
        if "unfetchable" in mcfg:  # none of its jobs ran (Plan.unfetchable)
            unfetchable.append({"slug": model, "reason": mcfg["unfetchable"]})
            continue
        snapshot = read_json(root / paths.SNAPSHOT.format(model=model) / paths.MANIFEST)
        results = load_results(root, model, mcfg["variants"], layout["quality"]["gate"])
        status = {v: status_of(r) for v, r in results.items()}
        host = {**preflight, "model_config": read_json(root / paths.SNAPSHOT.format(model=model) / "config.json")}
        largest = max(layout["bench"]["batch_sizes"])
        cells = {v: engine_cells(r, host) for v, r in results.items()}
        ran = [results[v]["bench"] for v, (st, _) in status.items() if st == "ok"]
        not_built = [{"variant": v, "status": st, "reason": why, "would_run": would_run(results[v])}
                     for v, (st, why) in status.items() if st != "ok"]
        models.append({
            "slug": model,
            "source": snapshot["source"],
            "provenance": snapshot["provenance"],
            "snapshot_mb": fmt_number(snapshot["total_bytes"] / MB),
            "snapshot_s": fmt_number(snapshot["timings"]["import_s"]),
            "disk": disk_summary(root / paths.SNAPSHOT.format(model=model), mcfg["variants"], results, preflight),
            "baseline": mcfg["baseline"],
            "table": markdown_table(comparison_table(mcfg, cells, status)),
            "engines": markdown_table(engines_table(mcfg, cells, status, results, largest)),
            "sweep": sweep_table(results, status),
            "figures": [{"path": Path(paths.FIGURE.format(model=model, figure=name)).relative_to("results").as_posix(),
                         "title": title} for name, title in FIGURES.items()],
            "reference": mcfg["reference"],
            "quality": quality_settings(layout["quality"], results),
            "recommendation": recommendation(cells, results, largest),
            "predicted": predicted_table(results),
            "history": history_table(root, model, mcfg["variants"], largest),
            "not_built": not_built,
            "threads": ran[0]["threads"] if ran else None,
            "prompt_tokens": ran[0]["prompt_tokens"] if ran else [],
            "chat_template": ran[0]["uses_chat_template"] if ran else False,
            "samples": samples_tables(layout["prompts"], results, status),
            "environment": markdown_table(environment_table(results)),
            "files": sorted(str(p.relative_to(root)) for p in (root / "results" / model).glob("*/*.json")),
        })
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      undefined=StrictUndefined, keep_trailing_newline=True)
    return env.get_template("report.md.j2").render(
        title=layout["title"], models=models, unfetchable=unfetchable, bench=layout["bench"],
        samples_max_new_tokens=layout["samples"]["max_new_tokens"],
        generated=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        preflight=preflight_lines(preflight),
    )
