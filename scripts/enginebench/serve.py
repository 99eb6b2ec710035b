"""Serve stage: one engine behind its own OpenAI-compatible server, its answers checked, its load swept.

1. The backend's server is started on the engine's files (enginebench.server: health-checked, stopped by
   its PID whatever happens).
2. Served output is the engine's output: each sample prompt is sent greedily, one at a time, through the
   API a client uses (chat completions where the model has a chat template, else text completions), and
   the answer must equal the engine's own sample. A server with another chat template, other stop
   tokens or other weights answers differently: the stage records FAIL with the first divergence, and
   no load figure (the sweep does not run). Placeholder weights have no answer to keep (their greedy
   tokens are coin tosses between near-equal logits, which batching flips): the answers are recorded,
   not compared; the prompt lengths must agree (a server with another chat template or tokenizer still
   fails) and no answer may hold its prompt (a server that sends its input back, as transformers serve
   does where its response parser does not find the chat template's answer anchor, fails).
3. The load sweep is GuideLLM's (a load generator of the field, not ours): its concurrent profile at each
   configured number of requests in flight, or its Poisson profile at each configured request rate,
   prompts cut from the eval text at lengths drawn from the configured range, a fixed output length,
   warm-up requests left out. Per step: requests/s, output tokens/s, TTFT, inter-token latency and
   end-to-end latency (p50/p90/p99), errors, and the goodput under `serve.slo`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import hostload, results, stats
from .backends import get_backend
from .errors import EngineBenchError, StageUnavailable
from .progress import progress
from .quality import eval_text
from .serve_commands import PROFILES, guidellm_command, profile, profile_text
from .server import Server, ServerError, free_port

PERCENTILES = ("p50", "p90", "p99")
REQUEST_TIMEOUT_S = 300  # a request the server holds longer is an error, never a hang


def run_serve(spec: dict, paths: dict, threads: int) -> dict:
    backend = get_backend(spec["backend"])
    samples = results.read(paths["samples"], "samples")
    if samples["status"] != "ok":
        return {"stage": "serve", "spec": spec, "status": samples["status"],
                "reason": f"samples: {samples['reason']}"}
    with tempfile.TemporaryDirectory(prefix="enginebench-serve-") as scratch:
        return _serve(spec, paths, threads, samples, backend, Path(scratch))


def _serve(spec: dict, paths: dict, threads: int, samples: dict, backend, scratch: Path) -> dict:
    from .prompts import PromptEncoder

    settings, serve = spec["settings"], spec["serve"]
    port = free_port()
    served = backend.served_file(paths["snapshot"], paths["checkpoint"], paths["engine"])
    try:
        if importlib.util.find_spec("guidellm") is None:  # e.g. the whole workflow in TensorRT-LLM's container
            raise StageUnavailable("GuideLLM is not installed in this environment (pip install -r "
                                   "envs/requirements.txt; never into the TensorRT-LLM container: serve from the host, "
                                   "--profile profiles/trtllm)")
        encoder = PromptEncoder(paths["snapshot"], chat_template=spec["chat_template"],
                                trust_remote_code=spec["trust_remote_code"])
        served, given = backend.served_model(served, scratch, encoder, spec["trust_remote_code"])
        cmd = backend.server(served, settings, port=port, slots=serve["slots"], threads=threads,
                             snapshot=Path(paths["snapshot"]))
    except StageUnavailable as why:
        return {"stage": "serve", "spec": spec, "status": "unavailable", "reason": str(why)}
    record = {"stage": "serve", "spec": spec, "server": {"command": cmd, **given}}
    log = Path(paths["out"]).with_suffix(".server.log")
    log.unlink(missing_ok=True)
    server = Server(cmd, port, log, serve["start_timeout_s"])
    try:
        with server:
            check = served_check(server, str(served), samples["samples"], encoder,
                                 spec["samples"]["max_new_tokens"], spec["speed_only"])
            record["check"] = check
            if not check["passed"]:
                return {**record, "status": "failed", "reason": check["reason"]}
            sweeps, loads, planned = [], [], profile(serve)
            for i in range(serve["repetitions"]):
                progress(f"load sweep {i + 1} of {serve['repetitions']}")
                steps, load = sweep(server, str(served), spec, encoder, paths["snapshot"],
                                    backend.fixed_length_fields(serve["output_tokens"]))
                if (got := [s.get(planned["step"]) for s in steps]) != planned["steps"]:
                    raise ServerError(f"GuideLLM's sweep {i + 1} returned steps at {planned['step']} {got}, not "
                                      f"{planned['steps']}")
                sweeps.append(steps)
                loads.append(load)
    except ServerError as error:
        return {**record, "status": "failed", "reason": str(error)}
    finally:
        record["server"]["pid"] = server.process.pid if server.process else None
    steps = combined_steps(sweeps)
    return {**record, "status": "ok", "slo": serve["slo"], "steps": steps, "best": best_step(steps), "sweeps": sweeps,
            "host_load": busiest(loads)}


def continuation(encoder, prompt: str, prompt_ids: list[int], output_ids: list[int]) -> str:
    """The engine's answer as a server returns it: the text the output ids add to the prompt's (`prompt`: its
    ids decoded; an answer decoded alone, a SentencePiece one, would lose the space before its first word)."""
    whole = encoder.decode(prompt_ids + output_ids)
    return whole[len(prompt):] if whole.startswith(prompt) else encoder.decode(output_ids)


def served_check(server: Server, model: str, samples: list[dict], encoder, max_tokens: int,
                 speed_only: str | None) -> dict:
    """Each sample prompt through the server (as `model`: the served file, which a server pinned to it
    accepts), greedily, one at a time; the answers against the engine's (for placeholder weights,
    `speed_only` says why not: only the prompt lengths are compared, and no answer may hold its prompt)."""
    chat, answers = encoder.uses_chat_template, []
    for i, sample in enumerate(samples):
        progress(f"served check {i + 1}/{len(samples)}")
        body = {"model": model, "max_tokens": max_tokens, "temperature": 0, "seed": 0, "stream": False}
        if chat:
            answer = server.post("/v1/chat/completions", {**body, "messages": [{"role": "user", "content":
                                                                                  sample["prompt"]}]})
            text = answer["choices"][0]["message"].get("content") or ""
        else:
            answer = server.post("/v1/completions", {**body, "prompt": sample["prompt"]})
            text = answer["choices"][0].get("text") or ""
        templated = encoder.decode(sample["prompt_ids"])
        engine = continuation(encoder, templated, sample["prompt_ids"], sample["output_ids"])
        answers.append({"prompt": sample["prompt"], "engine": engine, "served": text,
                        "echoed": holds_prompt(text, sample["prompt"], templated),
                        "engine_prompt_tokens": len(sample["prompt_ids"]),
                        "served_prompt_tokens": (answer.get("usage") or {}).get("prompt_tokens")})
    check = {"api": "chat completions" if chat else "text completions", "answers": answers,
             "equal": sum(a["served"] == a["engine"] for a in answers), "compared": speed_only is None}
    check["prompt_lengths_reported"] = sum(a["served_prompt_tokens"] is not None for a in answers)
    if speed_only:
        check["not_compared"] = speed_only
        first = next((a for a in answers if a["served_prompt_tokens"] not in (None, a["engine_prompt_tokens"])), None)
        if first is not None:
            check["reason"] = (f"the server's prompt is {first['served_prompt_tokens']} tokens, the engine's "
                               f"{first['engine_prompt_tokens']} (prompt {first['prompt']!r}): its chat template or "
                               "tokenizer differs")
        else:
            first = next((a for a in answers if a["echoed"]), None)
            if first is not None:
                shown = first["served"][:120] + ("..." if len(first["served"]) > 120 else "")
                check["reason"] = (f"the server sends the prompt back inside its answer (prompt {first['prompt']!r}, "
                                   f"answer {shown!r}): every streamed figure would time that echo, not the "
                                   "engine's first token")
    else:
        first = next((a for a in answers if a["served"] != a["engine"]), None)
        if first is not None:
            check["reason"] = divergence_text(first, len(answers))
    check["passed"] = first is None
    return check


ECHO_MIN_CHARS = 16  # a shorter needle could turn up in random tokens by chance


def holds_prompt(answer: str, prompt: str, templated: str) -> bool:
    """Whether an answer holds its prompt: the prompt as the chat template wrapped it, or the bare prompt where
    long enough, compared without whitespace (a server may decode spaces otherwise). Random tokens never
    spell either: an answer holding one is the server's input sent back."""
    haystack = "".join(answer.split())
    needles = ("".join(templated.split()), "".join(prompt.split()))
    return any(len(n) >= ECHO_MIN_CHARS and n in haystack for n in needles)


def divergence_text(answer: dict, count: int) -> str:
    """Where the served answer leaves the engine's, and the prompt lengths when those differ too."""
    engine, served = answer["engine"], answer["served"]
    at = next((i for i, (a, b) in enumerate(zip(engine, served, strict=False)) if a != b),
              min(len(engine), len(served)))
    around = slice(max(0, at - 20), at + 30)
    text = (f"served output differs from the engine's own samples (prompt {answer['prompt']!r}): first divergence "
            f"at character {at}: engine {engine[around]!r}, server {served[around]!r}")
    if answer["served_prompt_tokens"] not in (None, answer["engine_prompt_tokens"]):
        text += (f"; the server's prompt is {answer['served_prompt_tokens']} tokens, the engine's "
                 f"{answer['engine_prompt_tokens']}: its chat template or tokenizer differs")
    return text


def request_rows(encoder, text: str, serve: dict, count: int, with_length: bool, seed: int = 0) -> list[dict]:
    """`count` GuideLLM rows: a passage of the eval text of a length drawn from serve.prompt_tokens, and
    (`with_length`) the fixed output length, which GuideLLM sends with `ignore_eos`."""
    ids = encoder.tokenizer(text, add_special_tokens=False).input_ids
    low, high = serve["prompt_tokens"]["min"], serve["prompt_tokens"]["max"]  # min <= max: plan.check_serve
    if len(ids) <= high:
        raise EngineBenchError(f"the eval text has {len(ids)} tokens, too few for prompts of up to {high}")
    rand = random.Random(seed)
    rows = []
    for _ in range(count):
        length = rand.randint(low, high)
        start = rand.randrange(0, len(ids) - length)
        rows.append({"prompt": encoder.tokenizer.decode(ids[start:start + length]),
                     **({"output_tokens_count": serve["output_tokens"]} if with_length else {})})
    return rows


def scenario(url: str, model: str, data: Path, snapshot: Path, serve: dict, chat: bool, out: Path,
             fixed_length: dict | None) -> dict:
    """GuideLLM's scenario: its profile (serve.profile) at each step, warm-up requests left out of the figures,
    the prompts of `data` (prompt, output_tokens_count), the snapshot's tokenizer, goodput under the SLO.
    `fixed_length`: the fields that fix the output length on a server that refuses GuideLLM's own (the
    rows then carry no output length; GuideLLM sends max_tokens and these fields with every request)."""
    chosen = profile(serve)
    backend = {"kind": "openai_http", "target": url, "model": model, "timeout": REQUEST_TIMEOUT_S,
               "request_format": "/v1/chat/completions" if chat else "/v1/completions"}
    if fixed_length is not None:
        backend.update(max_tokens=serve["output_tokens"], extras={"body": fixed_length})
    return {
        "metadata": {"name": "enginebench serve", "description": "enginebench's load sweep (rules/serve.smk)"},
        "spec": {
            "backend": backend,
            "profile": {"kind": serve.get("profile", "concurrent"), chosen["field"]: [chosen["steps"][0]],
                        "warmup": {"value": serve["warmup_requests"], "mode": "requests"}},
            "constraints": [{"kind": "max_requests", "count": serve["requests"] + serve["warmup_requests"]}],
            "tokenizer": {"kind": "huggingface_auto", "model": str(snapshot)},
            "data": [{"kind": "json_file", "path": str(data)}],
            "outputs": [{"kind": "json", "path": str(out)}],
            "metrics": {"kind": "generative", "sample_size": 0,
                        "slo": {"ttft_ms": serve["slo"]["ttft_ms"], "tpot_ms": serve["slo"]["itl_ms"]}},
        },
        "benchmarks": [{f"profile.{chosen['field']}": x} for x in chosen["steps"]],
    }


def sweep(server: Server, model: str, spec: dict, encoder, snapshot: Path,
          fixed_length: dict | None) -> tuple[list[dict], dict]:
    """The load sweep's steps, and what other processes used the host meanwhile (the server and GuideLLM
    are this stage's own children: enginebench.hostload counts them as its own)."""
    serve = spec["serve"]
    text, _ = eval_text(spec["eval_text"])
    steps = len(profile(serve)["steps"])
    rows = request_rows(encoder, text, serve, steps * (serve["requests"] + serve["warmup_requests"]),
                        with_length=fixed_length is None)
    with tempfile.TemporaryDirectory(prefix="enginebench-guidellm-") as tmp:
        data, out, scenario_file = (Path(tmp) / name for name in ("requests.jsonl", "guidellm.json", "scenario.json"))
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        scenario_file.write_text(json.dumps(scenario(server.url, model, data, Path(snapshot), serve,
                                                     encoder.uses_chat_template, out, fixed_length), indent=1))
        cmd = guidellm_command(scenario_file)
        progress(f"load sweep: GuideLLM, {steps} steps ({profile_text(serve)}), "
                 f"{serve['requests']} requests each after {serve['warmup_requests']} warm-up")
        env = {**os.environ, "GUIDELLM__MAX_WORKER_PROCESSES": "1", "HF_HUB_OFFLINE": "1"}
        started, before = time.perf_counter(), hostload.sample()
        done = subprocess.run(cmd, env=env, stdout=sys.stderr)
        load = hostload.host_load(before)
        if gone := server.exited():
            raise ServerError(f"{gone}\n(during the load sweep)")
        if done.returncode != 0 or not out.exists():
            raise ServerError(f"GuideLLM exited with status {done.returncode} (the server still runs); see its "
                              "output above")
        progress(f"load sweep: done in {time.perf_counter() - started:.0f} s")
        return parse_guidellm(json.loads(out.read_text()), serve["slo"]), load


def _percentiles(summary: dict, scale: float = 1.0) -> dict:
    found = (summary or {}).get("successful") or {}
    values = found.get("percentiles") or {}
    return {p: values[p] * scale for p in PERCENTILES if values.get(p) is not None}


def parse_guidellm(report: dict, slo: dict) -> list[dict]:
    """One step per GuideLLM benchmark (the requests overlapping its measurement window, which starts when the
    request after the warm-up ones starts): requests/s and output
    tokens/s over the window's duration, latency percentiles, errors, and goodput = requests/s × the share
    of requests that met every SLO target (GuideLLM's slo_attainment; errored requests count as missed)."""
    steps = []
    for bench in report["benchmarks"]:
        m, duration = bench["metrics"], bench["duration"]
        totals = m["request_totals"]
        per_s = totals["successful"] / duration if duration else 0.0
        step = {
            **step_of(bench["config"]["strategy"]),
            "completed": totals["successful"], "errored": totals["errored"], "incomplete": totals["incomplete"],
            "duration_s": duration, "requests_per_s": per_s,
            "output_tokens_per_s": (m["output_token_count"]["successful"]["total_sum"] / duration) if duration else 0.0,
            "ttft_ms": _percentiles(m["time_to_first_token_ms"]),
            "itl_ms": _percentiles(m["inter_token_latency_ms"]),
            "e2e_s": _percentiles(m["request_latency"]),
            "slo_attainment": m.get("slo_attainment"),
        }
        step["goodput_rps"] = None if step["slo_attainment"] is None else per_s * step["slo_attainment"]
        step["meets_slo"] = (step["completed"] > 0 and step["errored"] == 0
                             and step["ttft_ms"].get("p90", float("inf")) <= slo["ttft_ms"]
                             and step["itl_ms"].get("p90", float("inf")) <= slo["itl_ms"])
        steps.append(step)
    return steps


def step_of(strategy: dict) -> dict:
    """What GuideLLM's strategy set for a step, under the step's key (PROFILES): requests in flight, or the
    requests/s offered; a strategy of no profile of ours (another kind than asked) is an error."""
    kind = strategy.get("type_")
    if kind not in PROFILES or PROFILES[kind]["field"] not in strategy:
        raise ServerError(f"GuideLLM ran a {kind!r} strategy, not one of the profiles asked ({', '.join(PROFILES)})")
    chosen = PROFILES[kind]
    return {chosen["step"]: strategy[chosen["field"]]}


def combined_steps(sweeps: list[list[dict]]) -> list[dict]:
    """Each step over the repeated sweeps: rates, goodput, attainment and latency percentiles are the
    median, requests/s also its summary over the sweeps (enginebench.stats); counts are summed; a step
    meets the SLO only where every sweep's did."""
    combined = []
    for runs in zip(*sweeps, strict=True):
        rates = [r["requests_per_s"] for r in runs]
        step = {**{p["step"]: runs[0][p["step"]] for p in PROFILES.values() if p["step"] in runs[0]},
                "sweeps": len(runs),
                **{k: sum(r[k] for r in runs) for k in ("completed", "errored", "incomplete", "duration_s")},
                **{k: _median([r[k] for r in runs]) for k in ("requests_per_s", "output_tokens_per_s",
                                                               "slo_attainment", "goodput_rps")},
                **{k: {p: _median([r[k][p] for r in runs]) for p in PERCENTILES if all(p in r[k] for r in runs)}
                   for k in ("ttft_ms", "itl_ms", "e2e_s")},
                "requests_per_s_summary": stats.summarize(rates, "requests/s"),
                "meets_slo": all(r["meets_slo"] for r in runs)}
        combined.append(step)
    return combined


def _median(values: list) -> float | None:
    return None if any(v is None for v in values) else statistics.median(values)


def busiest(loads: list[dict]) -> dict:
    """The host load of the sweep that saw the most of other processes (any busy sweep makes the engine's
    figures busy)."""
    known = [x for x in loads if x.get("other_share") is not None]
    return max(known, key=lambda x: x["other_share"]) if known else loads[0]


def best_step(steps: list[dict]) -> dict | None:
    """The step with the most requests/s among those that meet the SLO, or None."""
    within = [s for s in steps if s["meets_slo"]]
    return max(within, key=lambda s: s["requests_per_s"]) if within else None
