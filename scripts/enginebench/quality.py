"""Quality stage: every engine measured against the model's reference engine, and a PASS/FAIL gate.

Two steps, both written once against the backend interface:
- `run_reference`: the reference engine scores fixed windows of an offline eval text and keeps, for
  every position, its top-k next-token log-probabilities and the log-probability of the true token.
- `run_quality`: an engine scores the same windows (perplexity, KL divergence against the
  reference's distribution, top-1 agreement) where it exposes logits, and its greedy samples are
  compared with the reference's (token agreement, first divergence) and checked for degeneration
  (repeated n-grams), which catches token salad even without logits. `gate` turns the figures into a
  verdict against the configured thresholds.

KL divergence from top-k: KL(P‖Q) is summed over the reference's top-k tokens plus one bucket for
the rest of the vocabulary (P's and Q's remaining mass). Merging outcomes never increases a KL
divergence, so the figure is a lower bound of the full-vocabulary KL, tight when P's mass sits in
its top-k (llama.cpp's --kl-divergence keeps the whole distribution instead).
"""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import EngineBenchError, StageFailure
from .progress import progress
from .stages import open_engine, upstream_problem

if TYPE_CHECKING:  # numpy is imported where it is used, after the engine loads: on the H200, a
    import numpy as np  # CUDA llama.cpp loaded after numpy segfaulted (docs/gpu-report/README.md)

CHUNK_ROWS = 64  # rows of a (positions × vocabulary) logits array turned into log-probabilities at a time
REPEAT_N = 4  # n of the repeated n-gram share (seq-rep-4 of Welleck et al., "Neural text degeneration…")
NON_FINITE = "engine returned non-finite logits (inf or NaN)"
EMPTY_SAMPLES = "every greedy sample is empty"


class BrokenEngine(StageFailure):
    """An engine that runs but whose output is no output (non-finite logits): a FAIL, not a crash."""

# gate key -> (metric key in the quality record, comparison, label, unit)
CHECKS = {
    "max_perplexity_ratio": ("perplexity_ratio", "<=", "perplexity ratio", "×"),
    "max_kl_divergence": ("kl_divergence_mean", "<=", "mean KL divergence", " nats"),
    "min_top1_agreement": ("top1_agreement", ">=", "top-1 agreement", ""),
    "min_greedy_agreement": ("greedy_agreement", ">=", "greedy token agreement", ""),
    "max_repetition_increase": ("repetition_increase", "<=", f"repeated {REPEAT_N}-gram share increase", ""),
}


def eval_text(path: str | None, key: str = "quality.eval_text") -> tuple[str, str]:
    """(text, where it came from): a configured UTF-8 file (config `key`), or Python's own pydoc
    topics prose."""
    if path is None:
        import pydoc_data.topics

        topics = pydoc_data.topics.topics
        # It changes between Python versions: a report made under another Python scores another text
        # (the eval text's sha256 is recorded beside its source).
        source = f"Python {sys.version_info.major}.{sys.version_info.minor}'s pydoc_data/topics.py (sorted topics)"
        return "\n\n".join(topics[key] for key in sorted(topics)), source
    try:
        return Path(path).read_text(encoding="utf-8"), path
    except (OSError, UnicodeDecodeError) as error:
        raise EngineBenchError(f"config key {key}: cannot read {path}: {error}") from error


def eval_windows(tokenizer, text: str, windows: int, window_tokens: int) -> list[list[int]]:
    """`windows` windows of `window_tokens` tokens, spread evenly over the text, each opening with BOS
    when the tokenizer has one (as llama.cpp's perplexity tool does)."""
    ids = tokenizer(text, add_special_tokens=False).input_ids
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    body = window_tokens - len(bos)
    if len(ids) < windows * body:
        raise EngineBenchError(f"the eval text has {len(ids)} tokens; {windows} windows of {window_tokens} tokens "
                               f"need {windows * body}: lower quality.windows or quality.window_tokens")
    stride = len(ids) // windows
    return [bos + ids[i * stride:i * stride + body] for i in range(windows)]


def normalized_rows(logits: np.ndarray):
    """Yield (row offset, logits shifted by their row maximum in float64, log of each row's sum of
    exponentials) chunks of a (positions × vocabulary) logits array: log-probabilities are
    shifted − log-sum, taken only where needed (a full log-probability array is a vocabulary-wide
    pass more per row; Gemma 3's vocabulary has 262,144 entries)."""
    import numpy as np
    for start in range(0, len(logits), CHUNK_ROWS):
        shifted = logits[start:start + CHUNK_ROWS].astype(np.float64)
        shifted -= shifted.max(axis=1, keepdims=True)  # each row's maximum is now exactly 0
        yield start, shifted, np.log(np.exp(shifted).sum(axis=1))


def window_logits(engine, ids: list[int]) -> np.ndarray | None:
    import numpy as np

    logits = engine.logits(ids)
    if logits is None:
        return None
    if logits.shape[0] != len(ids):
        raise StageFailure(f"engine returned logits for {logits.shape[0]} of {len(ids)} positions")
    if not np.isfinite(logits).all():
        raise BrokenEngine(NON_FINITE)
    return logits[:-1]  # the last position predicts a token past the window


def reference_distribution(logits: np.ndarray, targets: list[int], top_k: int) -> dict:
    """The reference's top-k next-token ids and log-probabilities, and the true token's log-probability."""
    import numpy as np
    top_ids, top_lp, target_lp = [], [], []
    for start, shifted, log_sum in normalized_rows(logits):
        rows = np.arange(len(shifted))
        k = min(top_k, shifted.shape[1])
        raw = logits[start:start + len(shifted)]  # the same order as the log-probabilities, half the bytes
        ids = np.argpartition(-raw, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(raw, ids, axis=1), axis=1)
        ids = np.take_along_axis(ids, order, axis=1)
        top_ids += ids.tolist()
        top_lp += np.round(np.take_along_axis(shifted, ids, axis=1) - log_sum[:, None], 7).tolist()
        target_lp += np.round(shifted[rows, targets[start:start + len(shifted)]] - log_sum, 7).tolist()
    return {"top_ids": top_ids, "top_logprobs": top_lp, "target_logprobs": target_lp}


def compare_distribution(logits: np.ndarray, targets: list[int], reference: dict) -> dict:
    """Per-position target log-probability, KL(reference ‖ engine) over top-k + rest, and top-1 match."""
    import numpy as np
    ref_ids = np.asarray(reference["top_ids"])
    ref_lp = np.asarray(reference["top_logprobs"], dtype=np.float64)
    if ref_ids.max() >= logits.shape[1]:
        raise StageFailure(f"engine vocabulary has {logits.shape[1]} entries; the reference predicts token "
                           f"{int(ref_ids.max())}")
    target_lp, kl, top1 = [], [], []
    for start, shifted, log_sum in normalized_rows(logits):
        rows = np.arange(len(shifted))
        ids, p_lp = ref_ids[start:start + len(shifted)], ref_lp[start:start + len(shifted)]
        q_shifted = np.take_along_axis(shifted, ids, axis=1)
        q_lp = q_shifted - log_sum[:, None]
        p, q = np.exp(p_lp), np.exp(q_lp)
        p_rest = np.clip(1 - p.sum(axis=1), 1e-12, None)
        q_rest = np.clip(1 - q.sum(axis=1), 1e-12, None)
        kl += np.clip((p * (p_lp - q_lp)).sum(axis=1) + p_rest * np.log(p_rest / q_rest), 0, None).tolist()
        # the reference's top token is also the engine's: its logit is the row's maximum (ties count:
        # bf16 logits often tie)
        top1 += (q_shifted[:, 0] >= 0).tolist()
        target_lp += (shifted[rows, targets[start:start + len(shifted)]] - log_sum).tolist()
    return {"target_logprobs": target_lp, "kl": kl, "top1": top1}


def greedy_agreement(reference: list[int], output: list[int]) -> dict:
    """Share of positions where two greedy continuations hold the same token (over the longer one),
    and the first position where they differ (None if identical)."""
    longest = max(len(reference), len(output))
    same = [a == b for a, b in zip(reference, output, strict=False)]
    first = next((i for i, eq in enumerate(same) if not eq), None)
    if first is None and len(reference) != len(output):
        first = len(same)
    return {"agreement": sum(same) / longest if longest else 1.0, "first_divergence": first}


def degeneration(ids: list[int]) -> dict:
    """Repeated n-gram share (1 − distinct/total n-grams, n=REPEAT_N) and distinct-token share."""
    grams = [tuple(ids[i:i + REPEAT_N]) for i in range(len(ids) - REPEAT_N + 1)]
    return {f"repeated_{REPEAT_N}gram_share": 1 - len(set(grams)) / len(grams) if grams else 0.0,
            "distinct_token_share": len(set(ids)) / len(ids) if ids else 1.0, "tokens": len(ids)}


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def run_reference(spec: dict, paths: dict, threads: int) -> dict:
    """Score the eval windows with the reference engine and keep its next-token distributions."""
    settings = spec["quality"]
    _, encoder, engine = open_engine(spec, paths, threads)
    text, source = eval_text(settings["eval_text"])
    windows = eval_windows(encoder.tokenizer, text, settings["windows"], settings["window_tokens"])
    long_windows = eval_windows(encoder.tokenizer, text, settings["long_windows"],
                                settings["long_window_tokens"]) if settings["long_windows"] else []
    scored, long = [], []
    try:
        for kept, windows_of, what in ((scored, windows, "window"), (long, long_windows, "long window")):
            for i, ids in enumerate(windows_of):
                progress(f"reference {what} {i + 1}/{len(windows_of)}")
                logits = window_logits(engine, ids)
                if logits is None:
                    raise EngineBenchError(f"reference variant uses backend {spec['backend']!r}, which exposes no "
                                           "logits: choose a reference whose backend does (torch, llamacpp)")
                kept.append({"ids": ids, **reference_distribution(logits, ids[1:], settings["top_k"])})
    except BrokenEngine as error:  # the finding: no engine of this model can be judged against it
        progress(f"reference: broken: {error}")
        return {"stage": "reference", "status": "broken", "spec": spec,
                "reason": f"the reference engine `{spec['variant']}` is broken: {error}"}
    return {"stage": "reference", "status": "ok", "spec": spec, "eval_text": source,
            "eval_text_sha256": text_sha256(text), "windows": scored, "long_windows": long}


def depth_quality(engine, long_windows: list[dict]) -> dict | None:
    """KL divergence and top-1 agreement on the long windows, early (first half of the positions) and
    late (second half) apart: a KV cache that degrades as the context grows scores worse late."""
    import numpy as np

    compared = []
    for i, window in enumerate(long_windows):
        progress(f"quality long window {i + 1}/{len(long_windows)}")
        logits = window_logits(engine, window["ids"])
        if logits is None:
            return None
        compared.append(compare_distribution(logits, window["ids"][1:], window))
    if not compared:
        return None
    half = len(long_windows[0]["ids"]) // 2  # predictions of positions < half are "early"
    early_kl = np.concatenate([c["kl"][:half] for c in compared])
    late_kl = np.concatenate([c["kl"][half:] for c in compared])
    return {"window_tokens": len(long_windows[0]["ids"]), "windows": len(compared), "late_from": half,
            "kl_divergence_early": float(early_kl.mean()), "kl_divergence_late": float(late_kl.mean()),
            "top1_agreement_early": float(np.concatenate([c["top1"][:half] for c in compared]).mean()),
            "top1_agreement_late": float(np.concatenate([c["top1"][half:] for c in compared]).mean()),
            "scored_tokens_late": int(late_kl.size)}


def all_empty(samples: list[dict]) -> bool:
    """Every greedy sample is empty (no token, or only whitespace): an engine that gives no output."""
    return bool(samples) and all(not s["output_ids"] or not s["text"].strip() for s in samples)


def _reference_or_problem(spec: dict, paths: dict):
    """(reference record, reference samples) or a result saying why there is no reference: a broken
    reference (non-finite logits, every sample empty) is status no_reference (verdict NO REFERENCE), a
    reference that was not built or failed is status failed (NO VERDICT)."""
    from . import results

    reference = results.read(paths["reference"], "reference")
    if reference.get("status") == "broken":
        return None, {"stage": "quality", "spec": spec, "status": "no_reference", "reason": reference["reason"]}
    problem = upstream_problem(paths["reference"], paths["reference_samples"])
    if problem is not None:
        return None, {"stage": "quality", "spec": spec, "status": "failed",
                      "reason": f"reference {spec['reference']!r} has no result ({problem['reason']})"}
    samples = results.read(paths["reference_samples"], "samples")["samples"]
    if all_empty(samples):
        return None, {"stage": "quality", "spec": spec, "status": "no_reference",
                      "reason": f"the reference engine `{spec['reference']}` is broken: {EMPTY_SAMPLES}"}
    return (reference, samples), None


def run_quality(spec: dict, paths: dict, threads: int) -> dict:
    """Measure one engine against the reference (paths: reference, reference_samples, samples)."""
    from . import results

    reference, failure = _reference_or_problem(spec, paths)
    if failure is not None:
        return failure
    backend, _, engine = open_engine(spec, paths, threads)
    result = measure(spec, engine, results.read(paths["samples"], "samples")["samples"], *reference)
    if backend.separate_logits_engine:  # the logits came from an engine built for them, not the timed one
        result["logits_engine"] = str(paths["engine"])
    return result


def run_predicted_quality(spec: dict, paths: dict, threads: int) -> dict:
    """Quality of the backend's stand-in for the engine (e.g. the ModelOpt fake-quantized model),
    measured the same way, with its own samples: a prediction made before any engine is built."""
    from .backends import get_backend
    from .prompts import PromptEncoder
    from .samples import generate_samples

    reference, failure = _reference_or_problem(spec, paths)
    if failure is not None:
        return {**failure, "stage": "predicted_quality"}
    backend = get_backend(spec["backend"])
    encoder = PromptEncoder(paths["snapshot"], chat_template=spec["chat_template"],
                            trust_remote_code=spec["trust_remote_code"])
    engine = backend.predictor(paths["snapshot"], spec["settings"], threads=threads,
                               trust_remote_code=spec["trust_remote_code"])
    samples = generate_samples(engine, encoder, spec)
    result = measure(spec, engine, samples, *reference)
    return {**result, "stage": "predicted_quality", "predicted_by": backend.predicts(spec["settings"]),
            "stand_in": getattr(engine, "calibration", {}), "samples": samples}


def measure(spec: dict, engine, samples: list[dict], reference: dict, ref_samples: list[dict]) -> dict:
    """Every quality figure of a loaded engine and its samples against the reference."""
    import numpy as np
    metrics: dict = {}
    per_window, broken = [], []
    for i, window in enumerate(reference["windows"]):
        progress(f"quality window {i + 1}/{len(reference['windows'])}")
        try:
            logits = window_logits(engine, window["ids"])
        except BrokenEngine as error:
            broken.append(str(error))
            break
        if logits is None:
            break
        per_window.append(compare_distribution(logits, window["ids"][1:], window))
    if all_empty(samples):
        broken.append(EMPTY_SAMPLES)
    if broken:  # the gate fails these whatever the other figures say
        metrics["broken"] = broken
        progress(f"quality: broken engine: {'; '.join(broken)}")
    if NON_FINITE in broken:
        metrics["logits"] = f"{NON_FINITE}: perplexity, KL and top-1 not measured"
    elif per_window:
        nll = -np.concatenate([w["target_logprobs"] for w in per_window])
        ref_nll = -np.concatenate([w["target_logprobs"] for w in reference["windows"]])
        kl = np.concatenate([w["kl"] for w in per_window])
        metrics.update(
            perplexity=math.exp(nll.mean()), reference_perplexity=math.exp(ref_nll.mean()),
            perplexity_ratio=math.exp(nll.mean() - ref_nll.mean()),
            kl_divergence_mean=float(kl.mean()), kl_divergence_p99=float(np.quantile(kl, 0.99)),
            kl_divergence_max=float(kl.max()),
            top1_agreement=float(np.concatenate([w["top1"] for w in per_window]).mean()),
            scored_tokens=int(nll.size),
            per_window={"perplexity": [math.exp(-np.mean(w["target_logprobs"])) for w in per_window],
                        "kl_divergence_mean": [float(np.mean(w["kl"])) for w in per_window]},
        )
        try:
            depth = depth_quality(engine, reference.get("long_windows", []))
        except BrokenEngine as error:  # a long context broke what the short windows did not
            depth = {"broken": str(error)}
        if depth is not None:
            metrics["depth"] = depth
    else:
        metrics["logits"] = f"backend {spec['backend']!r} exposes no logits: perplexity, KL and top-1 not measured"
    agreement = [greedy_agreement(r["output_ids"], s["output_ids"]) for r, s in zip(ref_samples, samples, strict=True)]
    own = [degeneration(s["output_ids"]) for s in samples]
    ref_degeneration = [degeneration(r["output_ids"]) for r in ref_samples]
    rep = f"repeated_{REPEAT_N}gram_share"
    metrics.update(
        greedy_agreement=float(np.mean([a["agreement"] for a in agreement])),
        first_divergence=[a["first_divergence"] for a in agreement],
        repeated_ngram_share=float(np.mean([d[rep] for d in own])),
        reference_repeated_ngram_share=float(np.mean([d[rep] for d in ref_degeneration])),
        distinct_token_share=float(np.mean([d["distinct_token_share"] for d in own])),
        per_sample={"greedy": agreement, "degeneration": own},
    )
    metrics["repetition_increase"] = metrics["repeated_ngram_share"] - metrics["reference_repeated_ngram_share"]
    return {"stage": "quality", "spec": spec, "status": "ok", "is_reference": spec["variant"] == spec["reference"],
            "eval_text": reference["eval_text"], "eval_text_sha256": reference["eval_text_sha256"],
            "metrics": metrics}


def gate(metrics: dict, thresholds: dict) -> dict:
    """PASS when every measured metric with a configured threshold is within it; FAIL names each miss,
    after the reasons an engine is broken (non-finite logits, empty samples), which no threshold lifts.
    Applied when reading quality results (report, gate), so thresholds can change without re-measuring."""
    checks, failures = [], list(metrics.get("broken", []))
    for key, (metric, op, label, unit) in CHECKS.items():
        limit = thresholds.get(key)
        if limit is None or metric not in metrics:
            continue
        value = metrics[metric]
        passed = value <= limit if op == "<=" else value >= limit
        checks.append({"metric": metric, "value": value, "op": op, "threshold": limit, "passed": passed})
        if not passed:
            failures.append(f"{label} {value:.3g}{unit} {'>' if op == '<=' else '<'} {limit:g}{unit}")
    return {"verdict": "FAIL" if failures else "PASS", "reasons": failures, "checks": checks}


# Verdicts whose engines' speed is shown and ranked: a pass, or a placeholder model's engine, whose
# quality means nothing (its report says "speed only")
SPEED_SHOWN = ("PASS", "NOT APPLICABLE")
# Verdicts that fail the gate (and the run, with quality.fail_on_gate)
GATE_FAILS = ("FAIL", "NO VERDICT", "NO REFERENCE")


def verdict(record: dict, thresholds: dict) -> dict:
    """{"verdict", "reasons", "checks"} of one engine's quality result. PASS or FAIL; NOT RUN when the
    engine could not be built on this host; NOT APPLICABLE for a placeholder model's engine (random
    weights: speed only); NO REFERENCE when the model's reference engine is broken (nothing can be judged
    against it); NO VERDICT when it or its reference failed."""
    if record.get("status") != "ok":
        verdict = {"unavailable": "NOT RUN", "not_applicable": "NOT APPLICABLE",
                   "no_reference": "NO REFERENCE"}.get(record.get("status"), "NO VERDICT")
        return {"verdict": verdict, "reasons": [record.get("reason", "no quality result")], "checks": []}
    return gate(record["metrics"], thresholds)


def gate_summary(spec: dict, root: Path) -> dict:
    """Every engine's verdict (and its predicted one) from the quality results; `failed` lists each
    FAIL, NO VERDICT or NO REFERENCE. NOT RUN (not built on this host) and NOT APPLICABLE (placeholder weights) are
    listed but do not fail the gate."""
    from . import paths, results

    engines, failed = [], []
    for model in spec["models"]:
        for variant in model["variants"]:
            kinds = [("engine", paths.QUALITY)] + ([("predicted", paths.PREDICTED)] if variant["predicted_by"] else [])
            for kind, pattern in kinds:
                record = results.read(Path(root) / pattern.format(model=model["slug"], variant=variant["slug"]),
                                      "quality" if kind == "engine" else "predicted_quality")
                result = verdict(record, spec["quality"]["gate"])
                engines.append({"model": model["slug"], "variant": variant["slug"], "kind": kind, **result})
                if result["verdict"] in GATE_FAILS:
                    name = f"{model['slug']}/{variant['slug']}{' (predicted)' if kind == 'predicted' else ''}"
                    failed.append(f"{name}: {result['verdict']} ({'; '.join(result['reasons'])})")
    return {"stage": "gate", "thresholds": spec["quality"]["gate"], "engines": engines, "failed": failed}
