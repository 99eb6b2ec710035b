"""The report's column vocabulary: every column of its engine tables, declared once (COLUMNS: the
header, with its unit, and how the cell is made from the row's records), and the tables as lists of
column names. A new figure is one entry in COLUMNS and its name in the tables that show it.

A cell is text: a median with its range and n, or why there is no figure (never a blank or a zero).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .backends.base import parallel_gpus
from .findings import busy_host, on_gpu, passed, peak_bytes
from .per_gpu import kv_per_gpu, weights_per_gpu
from .report_cells import MB, fmt_number, latency_cell, speedup_text, summary_cell, thousandths
from .roofline import bound_bandwidth, decode_bound, decode_context, kv_bytes_per_token, stream_gpus
from .scheduler import bandwidth_source


@dataclass(frozen=True)
class Row:
    """What a table row is made from: an engine's records (findings.load_results) and, for the speed
    tables, the bench's sweep entry at the row's batch size, the baseline's and the engine's own at
    batch 1; for the quality table, the scored (or predicted) record and its verdict."""

    variant: str
    results: dict
    host: dict | None = None
    point: dict | None = None
    baseline: dict | None = None
    batch1: dict | None = None
    label: str | None = None
    quality: dict | None = None
    verdict: dict | None = None

    @property
    def bench(self) -> dict:
        return self.results["bench"]

    @property
    def metrics(self) -> dict:
        return self.results["bench"]["metrics"]


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[Row], str]
    # what the column counts, where the rows' records say it (a sentence above the table), or None
    note: Callable[[list[Row]], str | None] | None = None


# --- cells that take more than a line ------------------------------------------------------------

def tokens_per_s_text(row: Row) -> str:
    return summary_cell(row.point["tokens_per_s"]).text + (" (busy host)" if busy_host(row.bench) else "")


def energy_text(row: Row) -> str:
    """Millijoules per generated token at the row's batch size, or why the bench has no energy figure."""
    if "energy_j_per_token" in row.point:
        return summary_cell(thousandths(row.point["energy_j_per_token"])).text
    energy = row.metrics.get("energy")
    return f"not measured: {energy['reason']}" if energy else "not measured (a bench from before energy was read)"


def energy_note(rows: list[Row]) -> str | None:
    """Whose energy the figures count (bench metrics.energy), where a row has them."""
    counters: dict[str, list[str]] = {}
    for row in rows:
        if counter := row.metrics.get("energy", {}).get("counter"):
            counters.setdefault(counter, []).append(f"`{row.variant}`")
    if not counters:
        return None
    counted = "; ".join(f"{counter} ({', '.join(dict.fromkeys(engines))})" for counter, engines in counters.items())
    return ("Energy (mJ/token): the energy counter's rise over each timed repetition ÷ the tokens it generated; "
            f"counted by {counted}.")


def bandwidth_for(bench: dict, host: dict) -> tuple[bool, float | None, str | None, int]:
    """(usable, GB/s, note, GPUs): the bandwidth that bounds one decode stream of this engine (the preflight's
    best repetition on its GPU, times the GPUs a tensor or row split reads at once; else the host's),
    whether it was measured on this hardware, where it was measured, and how many GPUs' it adds up."""
    usable, where = bandwidth_source(bench["environment"], host["environment"])
    if not usable:
        return False, None, where, 1
    gpus = stream_gpus(bench["spec"]["settings"], on_gpu(bench))
    measured = host["bandwidth"]["device" if on_gpu(bench) else "host"]
    return True, None if measured is None else bound_bandwidth(measured) * gpus, where, gpus


def roofline_cells(results: dict, host: dict) -> tuple[str, str]:
    """(decode bound, share of it): the single-stream decode bound from the measured bandwidth and the
    engine's bytes per token, and the engine's single-stream decode speed as a share of it."""
    bench = results["bench"]
    m, info = bench["metrics"], bench["engine_info"]
    usable, bandwidth, where, _ = bandwidth_for(bench, host)
    if not usable:
        return f"not computed: {where}", "—"
    kv = kv_bytes_per_token(host["model_config"], bench["describe"]["kv_cache"])
    if not info.get("weight_bytes") or bandwidth is None or kv is None:
        return "not computed (weights, KV layout or bandwidth unknown)", "—"
    bound = decode_bound(bandwidth, info["weight_bytes"], kv, decode_context(bench))
    share = m["decode_tokens_per_s_single"]["median"] / bound["tokens_per_s"]
    beaten = (": above its bound, so the bound is wrong: the engine reads fewer bytes per token than counted, or "
              "memory gives it more than the preflight measured" if share > 1 else "")
    return fmt_number(bound["tokens_per_s"]), f"{share:.0%}{beaten}" + (f" ({where})" if where else "")


def gpus_text(row: Row) -> str:
    """The GPUs the engine spans; an engine on the CPU (a torch split's ranks on a host without GPU) counts its
    processes instead."""
    gpus = parallel_gpus(row.results["spec"]["settings"])
    if row.bench["engine_info"].get("device", "cpu") == "cpu":
        return f"{gpus} (CPU process{'es' if gpus > 1 else ''})"
    return str(gpus)


def memory_cell(measured: tuple[int | None, str]) -> str:
    size, how = measured
    return how if size is None else f"{fmt_number(size / MB)} ({how})"


def stream_bandwidth_text(row: Row) -> str:
    usable, bandwidth, where, gpus = bandwidth_for(row.bench, row.host)
    if not usable or bandwidth is None:
        return f"not measured: {where}" if not usable else "not measured"
    return f"{fmt_number(bandwidth)}" + (f" ({gpus} × one GPU's)" if gpus > 1 else "")


def device_text(bench: dict) -> str:
    """Where the engine ran, as the engine itself reported it (llama.cpp: read back from its load log)."""
    info = bench["engine_info"]
    device = str(info.get("device", "not reported"))
    if device.startswith("cuda"):
        gpu = info.get("device_name") or next(iter(bench["environment"]["gpus"]), {}).get("name")
        return f"{device} ({gpu})" if gpu else device
    return device


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


def verdict_text(verdict: dict, *, is_reference: bool = False) -> str:
    """PASS, FAIL or why there is no verdict; FAIL reasons are listed once, under the table."""
    if verdict["verdict"] == "PASS":
        return "PASS (reference: self-check)" if is_reference else "PASS"
    if verdict["verdict"] in ("NO VERDICT", "NO REFERENCE"):
        return f"{verdict['verdict']}: {'; '.join(verdict['reasons'])}"
    return verdict["verdict"]


def quality_figure(key: str, form: str) -> Callable[[Row], str]:
    def cell(row: Row) -> str:
        m = row.quality.get("metrics", {})
        return format(m[key], form) if key in m else "—"

    return cell


def kl_text(row: Row) -> str:
    m = row.quality.get("metrics", {})
    return f"{m['kl_divergence_mean']:.4f}; {m['kl_divergence_p99']:.3f}" if "kl_divergence_mean" in m else "—"


def engine_with_verdict(row: Row) -> str:
    return row.variant if passed(row.results) else f"{row.variant} ({row.results['verdict']['verdict']})"


# --- the vocabulary -------------------------------------------------------------------------------

COLUMNS: dict[str, Column] = {
    "engine": Column("Engine", lambda row: row.label or row.variant),
    "engine_verdict": Column("Engine", engine_with_verdict),  # tables that list failing engines too
    "batch_size": Column("Batch size", lambda row: str(row.point["batch_size"])),
    # speed at the row's batch size
    "tokens_per_s": Column("Tokens/s", tokens_per_s_text),
    "x_baseline": Column("× baseline", lambda row: speedup_text(row.point["tokens_per_s"]["median"],
                                                               row.baseline["tokens_per_s"]["median"])),
    "x_batch1": Column("× own batch 1", lambda row: speedup_text(row.point["tokens_per_s"]["median"],
                                                                 row.batch1["tokens_per_s"]["median"])),
    "ttft": Column("Time to first token (ms): median; p90", lambda row: latency_cell(row.point["ttft_s"]).text),
    "itl": Column("Inter-token latency (ms): median; p90", lambda row: latency_cell(row.point["itl_s"]).text),
    "energy": Column("Energy (mJ/token)", energy_text, energy_note),
    # single stream only
    "decode": Column("Decode tokens/s", lambda row: summary_cell(row.metrics["decode_tokens_per_s_single"]).text),
    "decode_engine": Column("Decode tokens/s, engine's counter",
                            lambda row: summary_cell(row.metrics["decode_tokens_per_s_single_engine"]).text
                            if "decode_tokens_per_s_single_engine" in row.metrics else "no counter of its own"),
    "bound": Column("Roofline bound (tokens/s)", lambda row: roofline_cells(row.results, row.host)[0]),
    "share": Column("% of bound", lambda row: roofline_cells(row.results, row.host)[1]),
    "device": Column("Device", lambda row: device_text(row.bench)),
    # what the engine costs
    # across GPUs: the engine's family's scaling (findings.scaling puts speedup and efficiency in the point)
    "gpus": Column("GPUs", gpus_text),
    "x_fewest": Column("× fewest GPUs", lambda row: f"{row.point['speedup']:.2f}×"),
    "efficiency": Column("Scaling efficiency", lambda row: f"{row.point['efficiency']:.0%}"),
    "weights_per_gpu": Column("Weights per GPU (MB)", lambda row: memory_cell(weights_per_gpu(row.bench))),
    "kv_per_gpu": Column("KV cache per GPU per 1k tokens (MB)", lambda row: memory_cell(kv_per_gpu(row.bench))),
    "stream_bandwidth": Column("Bandwidth one stream reads (GB/s)", stream_bandwidth_text),
    "weights": Column("Weights in memory (MB)", lambda row: fmt_number(row.bench["engine_info"]["weight_bytes"] / MB)
                      if row.bench["engine_info"].get("weight_bytes") else "not reported"),
    "peak_memory": Column("Peak memory (MB)", lambda row: fmt_number(peak_bytes(row.metrics) / MB)),
    "load": Column("Load, cold (s)", lambda row: summary_cell(row.metrics["load_s"]).text),
    "build": Column("Build (s)", lambda row: build_text(row.results)),
    "compile": Column("Compile + graph capture (s)", lambda row: compile_text(row.bench)),
    "disk": Column("On disk (MB)", lambda row: disk_text(row.results)),
    # quality against the reference
    "weights_format": Column("Weights", lambda row: row.results["spec"]["describe"]["quantization"]),
    "kv_cache": Column("KV cache", lambda row: row.results["spec"]["describe"]["kv_cache"]),
    "verdict": Column("Verdict", lambda row: verdict_text(row.verdict, is_reference=row.quality.get("is_reference",
                                                                                                     False))),
    "perplexity_ratio": Column("Perplexity ratio", quality_figure("perplexity_ratio", ".3f")),
    "kl": Column("Mean KL (nats); p99", kl_text),
    "top1": Column("Top-1", quality_figure("top1_agreement", ".1%")),
    "greedy": Column("Greedy agreement", quality_figure("greedy_agreement", ".1%")),
    "repeated": Column("Repeated 4-grams", quality_figure("repeated_ngram_share", ".1%")),
}

TABLES: dict[str, tuple[str, ...]] = {
    # "x_baseline" only where the baseline passed (speed_sections leaves it out otherwise)
    "single": ("engine", "tokens_per_s", "x_baseline", "ttft", "itl", "decode", "decode_engine", "bound", "share",
               "device"),
    "batch": ("engine", "tokens_per_s", "x_baseline", "x_batch1", "ttft", "itl", "energy"),
    "sweep": ("engine", "batch_size", "tokens_per_s", "x_batch1", "ttft", "itl", "energy"),
    "cost": ("engine_verdict", "weights", "peak_memory", "load", "build", "compile", "disk"),
    "scaling": ("engine", "gpus", "batch_size", "tokens_per_s", "x_fewest", "efficiency"),
    "scaling_memory": ("engine_verdict", "gpus", "weights_per_gpu", "kv_per_gpu", "peak_memory", "stream_bandwidth",
                       "bound", "share"),
    "quality": ("engine", "weights_format", "kv_cache", "verdict", "perplexity_ratio", "kl", "top1", "greedy",
                "repeated"),
}


def row(table: str, source: Row, leave_out: tuple[str, ...] = ()) -> dict[str, str]:
    """One row of `table`: {header: cell} in the table's column order."""
    return {COLUMNS[name].header: COLUMNS[name].cell(source) for name in TABLES[table] if name not in leave_out}


def notes(table: str, sources: list[Row]) -> list[str]:
    """The notes of `table`'s columns (Column.note) for these rows."""
    return [text for name in TABLES[table] if (note := COLUMNS[name].note) and (text := note(sources))]
