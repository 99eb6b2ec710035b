"""Bench stage: cold load in fresh processes, then warm-up and timed repetitions of a batch-size sweep,
with every token's arrival time (time to first token, inter-token latency)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from . import tensor_parallel
from .backends.base import parallel_gpus
from .energy import counter
from .environment import environment
from .errors import EngineBenchError
from .hostload import host_load, sample
from .progress import progress
from .prompts import PromptEncoder
from .stages import load_engine
from .stats import summarize

# What an engine's load imports: where one is in the bench's process already, its own load is not cold.
HEAVY_MODULES = ("torch", "transformers", "numpy", "llama_cpp", "tensorrt_llm")


def preloaded() -> list[str]:
    return [name for name in HEAVY_MODULES if name in sys.modules]


def probe_load(spec: dict, paths: dict, threads: int, trust_remote_code: bool) -> dict:
    """Time one engine load in a fresh Python process (a cold load, as a user would see it)."""
    cmd = [sys.executable, "-m", "enginebench.loadprobe", "--spec", json.dumps(spec),
           "--snapshot", str(paths["snapshot"]), "--checkpoint", str(paths["checkpoint"]),
           "--engine", str(paths["engine"]), "--threads", str(threads)]
    if trust_remote_code:
        cmd.append("--trust-remote-code")
    # Keep the caller's PYTHONPATH (an air-gapped host's installed bundle lives there): add ours first.
    ours = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (ours, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise EngineBenchError(f"engine load failed in a fresh process:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class TokenClock:
    """When each row's tokens reached the host, as the engine streams them (Engine.generate's on_token)."""

    def __init__(self, rows: int):
        self.arrivals: list[list[float]] = [[] for _ in range(rows)]
        self.started = time.perf_counter()

    def __call__(self, row: int) -> None:
        self.arrivals[row].append(time.perf_counter())

    def ttft(self) -> list[float]:
        """Time to first token of each row, from the start of the generate call (prefill included)."""
        return [times[0] - self.started for times in self.arrivals]

    def itl(self) -> list[float]:
        """Every gap between consecutive tokens of a row, all rows pooled."""
        return [b - a for times in self.arrivals for a, b in zip(times, times[1:], strict=False)]


def timed_generate(engine, batch, max_new_tokens, stop_ids) -> dict:
    clock = TokenClock(len(batch))
    rows = engine.generate(batch, max_new_tokens, stop_ids, fixed_length=True, on_token=clock)
    seconds = time.perf_counter() - clock.started
    tokens = sum(len(r) for r in rows)
    if tokens != max_new_tokens * len(batch):
        raise EngineBenchError(
            f"engine returned {tokens} tokens for a fixed-length run of {len(batch)} x {max_new_tokens}"
        )
    streamed = [len(times) for times in clock.arrivals]
    if streamed != [max_new_tokens] * len(batch):
        raise EngineBenchError(f"engine streamed {streamed} tokens per row, returned {max_new_tokens} each")
    run = {"seconds": seconds, "tokens": tokens, "ttft_s": clock.ttft(), "itl_s": clock.itl()}
    if (counters := engine.counters()) is not None:
        run["engine_counters"] = counters
    return run


def sweep_batches(prompts: list, size: int) -> list[list]:
    """Batches of `size` prompts that cover the prompt set once, cycling through it where a batch is
    larger than what is left: 4 prompts at size 1 give 4 batches, at size 8 one batch of 8."""
    n = len(prompts)
    return [[prompts[(start + i) % n] for i in range(size)] for start in range(0, n, size)]


def warm_up(engine, prompts: list, sizes: list[int], max_new_tokens: int, stop_ids: list[int],
            warmups: int) -> dict[int, float]:
    """Untimed runs before the timed ones; each batch size's first run's seconds (a compiling engine's
    compile + graph capture). Every batch of the sweep is fed once, the first one in full: the others'
    prompt shapes get their first prefill here too (on the H200 a new shape's first eager prefill took
    ~80 ms more: cuDNN attention plans, cuBLAS heuristics), with two new tokens."""
    first_runs = {}
    for i in range(warmups):
        progress(f"warm-up {i + 1}/{warmups}: batch sizes {sizes}")
        for size in sizes:
            first, *others = sweep_batches(prompts, size)
            first_runs.setdefault(size, timed_generate(engine, first, max_new_tokens, stop_ids)["seconds"])
            for batch in others:
                timed_generate(engine, batch, min(max_new_tokens, 2), stop_ids)
    return first_runs


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
    """Single-stream decode tokens/s (after the first token) by our clock, and by the engine's own
    counter where it keeps one (so the harness overhead can be measured)."""
    rates = {"decode_tokens_per_s_single": summarize(
        [sum(len(r["itl_s"]) for r in rep["batches"]) / sum(sum(r["itl_s"]) for r in rep["batches"])
         for rep in single], "tokens/s")}
    counters = [[r["engine_counters"]["engine"] for r in rep["batches"] if "engine_counters" in r] for rep in single]
    if all(counters):
        rates["decode_tokens_per_s_single_engine"] = summarize(
            [sum(c["decode_tokens"] for c in rep) / sum(c["decode_s"] for c in rep) for rep in counters], "tokens/s")
    return rates


def sweep_metrics(batch_size: int, repetitions: list[dict]) -> dict:
    """Throughput and latency at one batch size, over every repetition (latencies pooled over rows)."""
    return {
        "batch_size": batch_size,
        "batches": len(repetitions[0]["batches"]),
        "generation_s": summarize([r["seconds"] for r in repetitions], "s"),
        "tokens_per_s": summarize([r["tokens"] / r["seconds"] for r in repetitions], "tokens/s"),
        "ttft_s": summarize([t for r in repetitions for b in r["batches"] for t in b["ttft_s"]], "s"),
        "itl_s": summarize([t for r in repetitions for b in r["batches"] for t in b["itl_s"]], "s"),
        # the device's energy over each repetition's runs, per token generated (metrics.energy says whose)
        **({"energy_j_per_token": summarize([r["energy_j"] / r["tokens"] for r in repetitions], "J/token")}
           if all("energy_j" in r for r in repetitions) else {}),
    }


def depth_contexts(encoder: PromptEncoder, eval_text_path: str | None, prompt: list[int],
                   depths: list[int]) -> tuple[dict[int, list[int]], str]:
    """Per context depth d: d tokens of the eval text (tokenized once, by the snapshot's tokenizer, and
    fed as ids to every engine), then the first bench prompt (after its BOS, which opens the context)."""
    from .quality import eval_text

    text, source = eval_text(eval_text_path)
    tokenizer = encoder.tokenizer
    ids = tokenizer(text, add_special_tokens=False).input_ids
    if len(ids) < max(depths):
        raise EngineBenchError(f"the eval text has {len(ids)} tokens, fewer than bench.context_depths' {max(depths)}")
    bos = prompt[:1] if tokenizer.bos_token_id is not None and prompt[:1] == [tokenizer.bos_token_id] else []
    return {d: bos + ids[:d] + prompt[len(bos):] for d in depths}, source


def depth_run(engine, ids: list[int], max_new_tokens: int, stop_ids: list[int], warmup: int,
              repetitions: int) -> dict:
    """Single-stream generation after a context of `ids`: raw runs, prefill rate and decode rate, and the
    KV cache the engine reports for that context."""
    for _ in range(warmup):
        timed_generate(engine, [ids], max_new_tokens, stop_ids)
    return depth_figures(engine, ids, [timed_generate(engine, [ids], max_new_tokens, stop_ids)
                                       for _ in range(repetitions)])


def depth_figures(engine, ids: list[int], runs: list[dict]) -> dict:
    """A context depth's figures from its single-stream runs (timed_generate's records)."""
    ttft = [r["ttft_s"][0] for r in runs]
    return {
        "status": "ok", "context_tokens": len(ids),
        "ttft_s": summarize(ttft, "s"),
        # time to first token covers the prefill of the whole context (and the first token's step)
        "prefill_tokens_per_s": summarize([len(ids) / t for t in ttft], "tokens/s"),
        "decode_tokens_per_s": summarize([len(r["itl_s"]) / sum(r["itl_s"]) for r in runs], "tokens/s"),
        "kv_cache": engine.kv_cache_bytes(ids),
        "raw": runs,
    }


def at_batch(metrics: dict, batch_size: int | None = None) -> dict:
    """The sweep entry of `batch_size`; None: the largest batch measured (the sweep's last)."""
    sweep = metrics["sweep"]
    if batch_size is None:
        return sweep[-1]
    return next(s for s in sweep if s["batch_size"] == batch_size)


def run_bench(spec: dict, paths: dict, threads: int) -> dict:
    settings = spec["bench"]
    load_before = sample()  # what else runs on the host while this bench measures
    # Cold loads, each in a fresh process: load_repetitions - 1 started for it, then this job's own load of
    # the engine it benches (its process is as fresh where nothing an engine's load imports is imported yet,
    # HEAVY_MODULES). A tensor-parallel rank cannot start a fresh process that joins its group: its own only.
    in_rank = tensor_parallel.in_rank()
    own_is_cold = in_rank or not preloaded()
    loads = 1 if in_rank else settings["load_repetitions"]
    probes = []
    for i in range(loads - own_is_cold):
        progress(f"cold load {i + 1}/{loads} in a fresh process")
        probes.append(probe_load({"backend": spec["backend"], "settings": spec["settings"]}, paths,
                                 threads, spec["trust_remote_code"]))
    own = "this rank's first load (torchrun started it)" if in_rank else "this bench's own process, its first load"
    if own_is_cold:
        progress(f"cold load {loads}/{loads}: {own}")
    started = time.perf_counter()
    backend, engine = load_engine(spec, paths, threads)
    if own_is_cold:
        probes.append({"load_s": time.perf_counter() - started, "what": own})
    encoder = PromptEncoder(paths["snapshot"], chat_template=spec["chat_template"],
                            trust_remote_code=spec["trust_remote_code"])
    prompts = [encoder.encode(p) for p in spec["prompts"]]
    parity = tokenizer_parity(engine, encoder, spec["prompts"])
    n, sizes = settings["max_new_tokens"], sorted(settings["batch_sizes"])  # readers rely on this order
    # A compiling engine's first run of each batch shape compiles: never inside a timed run.
    warmups = max(settings["warmup"], 1) if engine.compiles else settings["warmup"]
    first_runs = warm_up(engine, prompts, sizes, n, encoder.stop_ids, warmups)

    read_energy, energy_counter = counter(engine.info().get("device", "cpu"))
    if parallel_gpus(spec["settings"]) > 1:  # one device's counter: not the engine's
        read_energy, energy_counter = None, "not measured: the engine spans several GPUs, the counter reads one"
    raw = {size: [] for size in sizes}
    for i in range(settings["repetitions"]):
        for size in sizes:
            batches = sweep_batches(prompts, size)
            progress(f"repetition {i + 1}/{settings['repetitions']}: batch size {size} ({len(batches)} batches)")
            joules = read_energy() if read_energy else None
            runs = [timed_generate(engine, batch, n, encoder.stop_ids) for batch in batches]
            raw[size].append({"seconds": sum(r["seconds"] for r in runs), "tokens": sum(r["tokens"] for r in runs),
                              "batches": runs, **({"energy_j": read_energy() - joules} if read_energy else {})})

    contexts, context_source = depth_contexts(encoder, spec["eval_text"], prompts[0],
                                               sorted(settings["context_depths"]))
    depths = []
    for depth, ids in contexts.items():
        if ids == prompts[0]:  # depth 0 is the single-stream sweep's first batch (batch size 1 is always swept)
            progress(f"context depth {depth}: {len(ids)} tokens, the single-stream sweep's runs of this prompt")
            depths.append({"depth": depth, **depth_figures(engine, ids, [rep["batches"][0] for rep in raw[1]])})
            continue
        progress(f"context depth {depth}: {len(ids)} tokens, {warmups} warm-up and {settings['repetitions']} runs")
        try:
            depths.append({"depth": depth, **depth_run(engine, ids, n, encoder.stop_ids, warmups,
                                                       settings["repetitions"])})
        except Exception as error:  # an engine that cannot hold this context: recorded, the others still run
            if tensor_parallel.in_rank():  # unless the other ranks wait in this depth's collectives: fail the job
                raise
            depths.append({"depth": depth, "status": "failed", "context_tokens": len(ids),
                           "reason": f"{type(error).__name__}: {error}"})

    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    metrics = {
        "load_s": summarize([p["load_s"] for p in probes], "s"),
        "sweep": [sweep_metrics(size, raw[size]) for size in sizes],  # smallest batch first
        **decode_rates(raw[1]),
        # smallest depth first; raw runs stay in "raw"
        "depths": [{k: v for k, v in d.items() if k != "raw"} for d in depths],
        "peak_rss_bytes": {"unit": "bytes", "value": peak_rss},
        "peak_device_bytes": {"unit": "bytes", "value": engine.peak_device_memory_bytes()},
        # what the sweep's energy figures count, or why there are none
        "energy": {"counter": energy_counter} if read_energy else {"counter": None, "reason": energy_counter},
    }
    if engine.compiles:  # wall time of each size's first (compiling) run, and their sum
        metrics["compile_s"] = {"unit": "s", "value": sum(first_runs.values()),
                                "by_batch_size": {str(k): v for k, v in first_runs.items()},
                                "what": "first warm-up generation of each batch size (compile + graph capture)"}
    return {
        "stage": "bench",
        "status": "ok",
        "spec": spec,
        "describe": backend.describe(spec["settings"]),
        "tokenizer_parity": parity,
        "threads": threads,
        "prompt_tokens": [len(p) for p in prompts],
        "context_text": context_source,
        "uses_chat_template": encoder.uses_chat_template,
        "engine_info": engine.info(),
        "versions": backend.versions(),
        "environment": environment(),
        "host_load": host_load(load_before),
        "raw": {"load_probes": probes,
                "sweep": [{"batch_size": size, "repetitions": raw[size]} for size in sizes],
                "first_warmup_s": {str(k): v for k, v in first_runs.items()},
                "depths": [{"depth": d["depth"], "runs": d.get("raw", [])} for d in depths]},
        "metrics": metrics,
    }


def history_figures(metrics: dict) -> dict:
    """A bench's headline figures as its run-history record keeps them (medians)."""
    figures = {"load_s": metrics["load_s"]["median"]}
    for entry in metrics["sweep"]:
        figures[f"tokens_per_s_batch{entry['batch_size']}"] = entry["tokens_per_s"]["median"]
    single = at_batch(metrics, 1)
    figures["ttft_s_batch1"] = single["ttft_s"]["median"]
    figures["itl_s_batch1"] = single["itl_s"]["median"]
    return figures


def record_history(result: dict, out: Path) -> None:
    """Append this bench's headline figures to the model's run history (results/{model}/history/)."""
    from .history import append, fingerprint

    if result.get("status", "ok") != "ok":
        return
    append(Path(out).parent.parent, "bench", Path(out).stem, history_figures(result["metrics"]),
           fingerprint(result["spec"]))
