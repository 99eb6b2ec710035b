"""The quality metrics on known inputs."""

import numpy as np
import pytest

from enginebench.quality_metrics import compare_distribution, degeneration, greedy_agreement, reference_distribution


def kl(p, q):
    return float((p * (np.log(p) - np.log(q))).sum())


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def logits():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(5, 50)) * 3
    return ref, ref + rng.normal(size=ref.shape)


def test_kl_over_the_whole_vocabulary_is_exact(logits):
    ref, eng = logits
    targets = [3, 1, 4, 1, 5]
    stored = reference_distribution(ref, targets, top_k=50)
    got = compare_distribution(eng, targets, stored)
    expected = [kl(p, q) for p, q in zip(softmax(ref), softmax(eng), strict=True)]
    assert got["kl"] == pytest.approx(expected, rel=1e-5)
    assert got["target_logprobs"] == pytest.approx(np.log(softmax(eng))[range(5), targets].tolist())


def test_top_k_kl_is_a_lower_bound_that_tightens_with_k(logits):
    ref, eng = logits
    full = compare_distribution(eng, [0] * 5, reference_distribution(ref, [0] * 5, top_k=50))["kl"]
    k4 = compare_distribution(eng, [0] * 5, reference_distribution(ref, [0] * 5, top_k=4))["kl"]
    k16 = compare_distribution(eng, [0] * 5, reference_distribution(ref, [0] * 5, top_k=16))["kl"]
    assert all(a <= b + 1e-9 <= c + 2e-9 for a, b, c in zip(k4, k16, full, strict=True))
    assert sum(k16) > 0.5 * sum(full)


def test_identical_distributions_agree_fully(logits):
    ref, _ = logits
    got = compare_distribution(ref, [0] * 5, reference_distribution(ref, [0] * 5, top_k=8))
    assert got["kl"] == pytest.approx([0] * 5, abs=1e-6) and all(got["top1"])


def test_greedy_agreement_counts_positions_and_first_divergence():
    assert greedy_agreement([1, 2, 3, 4], [1, 2, 3, 4]) == {"agreement": 1.0, "first_divergence": None}
    assert greedy_agreement([1, 2, 3, 4], [1, 2, 9, 4]) == {"agreement": 0.75, "first_divergence": 2}
    assert greedy_agreement([1, 2, 3, 4], [1, 2]) == {"agreement": 0.5, "first_divergence": 2}  # stopped early
    assert greedy_agreement([], []) == {"agreement": 1.0, "first_divergence": None}


def test_degeneration_flags_token_salad():
    salad = [7, 8] + [9, 10] * 15  # "strugg (str, 1) 1) 1) 1) ..."
    prose = list(range(32))
    assert degeneration(salad)["repeated_4gram_share"] == pytest.approx(1 - 4 / 29)  # 4 distinct of 29
    assert degeneration(prose) == {"repeated_4gram_share": 0.0, "distinct_token_share": 1.0, "tokens": 32}
    assert degeneration([5, 5])["repeated_4gram_share"] == 0.0  # too short to repeat a 4-gram
