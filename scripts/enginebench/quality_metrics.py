"""Quality metrics: pure functions of logits and token ids, no engine (numpy imported where used).

KL divergence from top-k: KL(P‖Q) is summed over the reference's top-k tokens plus one bucket for
the rest of the vocabulary (P's and Q's remaining mass). Merging outcomes never increases a KL
divergence, so the figure is a lower bound of the full-vocabulary KL, tight when P's mass sits in
its top-k (llama.cpp's --kl-divergence keeps the whole distribution instead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import StageFailure

if TYPE_CHECKING:  # numpy is imported where it is used, after the engine loads: on the H200, a
    import numpy as np  # CUDA llama.cpp loaded after numpy segfaulted (docs/gpu-report/README.md)

CHUNK_ROWS = 64  # rows of a (positions × vocabulary) logits array turned into log-probabilities at a time
REPEAT_N = 4  # n of the repeated n-gram share (seq-rep-4 of Welleck et al., "Neural text degeneration…")


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
