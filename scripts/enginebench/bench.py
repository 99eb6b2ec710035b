"""Bench stage: cold load in fresh processes, then warm-up and timed repetitions, batched and single."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from .cli import progress
from .environment import environment
from .errors import EngineBenchError
from .prompts import PromptEncoder
from .stages import open_engine
from .stats import summarize


def probe_load(spec: dict, paths: dict, threads: int, trust_remote_code: bool) -> dict:
    """Time one engine load in a fresh Python process (a cold load, as a user would see it)."""
    cmd = [sys.executable, "-m", "enginebench.loadprobe", "--spec", json.dumps(spec),
           "--snapshot", str(paths["snapshot"]), "--checkpoint", str(paths["checkpoint"]),
           "--engine", str(paths["engine"]), "--threads", str(threads)]
    if trust_remote_code:
        cmd.append("--trust-remote-code")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise EngineBenchError(f"engine load failed in a fresh process:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed_generate(engine, batch, max_new_tokens, stop_ids) -> dict:
    started = time.perf_counter()
    rows = engine.generate(batch, max_new_tokens, stop_ids, fixed_length=True)
    seconds = time.perf_counter() - started
    tokens = sum(len(r) for r in rows)
    if tokens != max_new_tokens * len(batch):
        raise EngineBenchError(
            f"engine returned {tokens} tokens for a fixed-length run of {len(batch)} x {max_new_tokens}"
        )
    run = {"seconds": seconds, "tokens": tokens}
    if (counters := engine.counters()) is not None:
        run["engine_counters"] = counters
    return run


def parity_text(chars: int = 4000) -> str:
    """English technical prose that ships with Python (pydoc topics), for the tokenizer parity check."""
    import pydoc_data.topics

    return "\n\n".join(pydoc_data.topics.topics.values())[:chars]


def tokenizer_parity(engine, encoder: PromptEncoder, prompts: list[str]) -> dict:
    """Does the engine's own tokenizer give the snapshot tokenizer's ids for the prompts and a prose text?"""
    text = parity_text()
    cases = [encoder.parity_case(p) for p in prompts]
    cases.append((text, True, list(encoder.tokenizer(text).input_ids)))
    if engine.tokenize(cases[0][0], cases[0][1]) is None:
        return {"checked": False, "reason": "the engine has no tokenizer of its own; it is fed the snapshot's ids"}
    mismatches = []
    for text, add_special, expected in cases:
        got = engine.tokenize(text, add_special)
        if got != expected:
            pairs = enumerate(zip(got, expected, strict=False))
            first = next((i for i, (a, b) in pairs if a != b), min(len(got), len(expected)))
            mismatches.append({"text": text, "expected": expected, "engine": got, "first_difference": first})
    return {"checked": True, "texts": len(cases), "equal": not mismatches, "mismatches": mismatches}


def decode_rates(single: list[dict]) -> dict:
    """Single-stream decode tokens/s by our clock and by the engine's own counter, where it keeps one."""
    per_rep = [[r["engine_counters"] for r in rep["per_prompt"] if "engine_counters" in r] for rep in single]
    if not all(per_rep):
        return {}
    rates = {}
    for who in ("harness", "engine"):
        rates[f"decode_tokens_per_s_single_{who}"] = summarize(
            [sum(c[who]["decode_tokens"] for c in rep) / sum(c[who]["decode_s"] for c in rep) for rep in per_rep],
            "tokens/s")
    return rates


def run_bench(spec: dict, paths: dict, threads: int) -> dict:
    settings = spec["bench"]
    probes = []
    for i in range(settings["load_repetitions"]):
        progress(f"cold load {i + 1}/{settings['load_repetitions']} in a fresh process")
        probes.append(probe_load({"backend": spec["backend"], "settings": spec["settings"]}, paths,
                                 threads, spec["trust_remote_code"]))

    started = time.perf_counter()
    backend, encoder, engine = open_engine(spec, paths, threads)
    in_process_load_s = time.perf_counter() - started  # tokenizer included; warm page cache
    prompts = [encoder.encode(p) for p in spec["prompts"]]
    parity = tokenizer_parity(engine, encoder, spec["prompts"])
    n = settings["max_new_tokens"]
    for i in range(settings["warmup"]):
        progress(f"warm-up {i + 1}/{settings['warmup']}")
        timed_generate(engine, prompts, n, encoder.stop_ids)
        timed_generate(engine, prompts[:1], n, encoder.stop_ids)

    batched, single = [], []
    for i in range(settings["repetitions"]):
        progress(f"repetition {i + 1}/{settings['repetitions']}: batched ({len(prompts)} prompts)")
        batched.append(timed_generate(engine, prompts, n, encoder.stop_ids))
        progress(f"repetition {i + 1}/{settings['repetitions']}: single-stream")
        runs = [timed_generate(engine, [p], n, encoder.stop_ids) for p in prompts]
        single.append({"seconds": sum(r["seconds"] for r in runs), "tokens": sum(r["tokens"] for r in runs),
                       "per_prompt": runs})

    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    metrics = {
        "load_s": summarize([p["load_s"] for p in probes], "s"),
        "generation_s_batched": summarize([r["seconds"] for r in batched], "s"),
        "tokens_per_s_batched": summarize([r["tokens"] / r["seconds"] for r in batched], "tokens/s"),
        "generation_s_single": summarize([r["seconds"] for r in single], "s"),
        "tokens_per_s_single": summarize([r["tokens"] / r["seconds"] for r in single], "tokens/s"),
        **decode_rates(single),
        "peak_rss_bytes": {"unit": "bytes", "value": peak_rss},
        "peak_device_bytes": {"unit": "bytes", "value": engine.peak_device_memory_bytes()},
    }
    return {
        "stage": "bench",
        "status": "ok",
        "spec": spec,
        "describe": backend.describe(spec["settings"]),
        "tokenizer_parity": parity,
        "threads": threads,
        "prompt_tokens": [len(p) for p in prompts],
        "uses_chat_template": encoder.uses_chat_template,
        "engine_info": engine.info(),
        "versions": backend.versions(),
        "environment": environment(),
        "raw": {"load_probes": probes, "in_process_load_s": in_process_load_s,
                "batched": batched, "single": single},
        "metrics": metrics,
    }


def record_history(result: dict, out: Path) -> None:
    """Append this bench's headline figures to the model's run history (results/{model}/history/)."""
    from .history import append

    if result.get("status", "ok") != "ok":
        return
    m = result["metrics"]
    append(Path(out).parent.parent, "bench", Path(out).stem,
           {key: m[key]["median"] for key in ("tokens_per_s_batched", "tokens_per_s_single", "load_s")})
