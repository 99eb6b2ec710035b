"""Quality stage: every engine measured against the model's reference engine (the metrics:
enginebench.quality_metrics; the verdicts: enginebench.verdicts).

Two steps, both written once against the backend interface:
- `run_reference`: the reference engine scores fixed windows of an offline eval text and keeps, for
  every position, its top-k next-token log-probabilities and the log-probability of the true token.
- `run_quality`: an engine scores the same windows (perplexity, KL divergence against the
  reference's distribution, top-1 agreement) where it exposes logits, and its greedy samples are
  compared with the reference's (token agreement, first divergence) and checked for degeneration
  (repeated n-grams), which catches token salad even without logits.
"""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import EngineBenchError, StageFailure
from .progress import progress
from .quality_metrics import REPEAT_N, compare_distribution, degeneration, greedy_agreement, reference_distribution
from .stages import load_engine, open_engine, upstream_problem

if TYPE_CHECKING:  # numpy is imported where it is used, after the engine loads: on the H200, a
    import numpy as np  # CUDA llama.cpp loaded after numpy segfaulted (docs/gpu-report/README.md)

NON_FINITE = "engine returned non-finite logits (inf or NaN)"
EMPTY_SAMPLES = "every greedy sample is empty"


class BrokenEngine(StageFailure):
    """An engine that runs but whose output is no output (non-finite logits): a FAIL, not a crash."""


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
    backend, engine = load_engine(spec, paths, threads)  # fed the reference's token ids: no tokenizer
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
                        "kl_divergence_mean": [float(np.mean(w["kl"])) for w in per_window],
                        # with the others: a smaller `quality.windows` (every other window) judged offline
                        "top1_agreement": [float(np.mean(w["top1"])) for w in per_window]},
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


