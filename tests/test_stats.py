import pytest

from enginebench.stats import percentile, summarize


def test_summarize_known_values():
    s = summarize([3, 1, 2, 10], "s")
    assert s["n"] == 4
    assert s["median"] == 2.5
    assert s["mean"] == 4.0
    assert (s["min"], s["max"]) == (1.0, 10.0)
    assert s["stdev"] == pytest.approx(4.0825, abs=1e-4)
    assert s["values"] == [3.0, 1.0, 2.0, 10.0]  # raw values kept in order
    assert s["unit"] == "s"


def test_summarize_single_value_has_zero_stdev():
    s = summarize([7.5], "tokens/s")
    assert (s["median"], s["stdev"], s["n"]) == (7.5, 0.0, 1)


def test_summarize_rejects_empty():
    with pytest.raises(ValueError):
        summarize([], "s")


@pytest.mark.parametrize(("values", "q", "expected"), [
    (list(range(1, 11)), 90, 9.1),  # rank 8.1 between 9 and 10
    (list(range(1, 11)), 50, 5.5),
    ([10, 1, 5], 90, 9.0),  # order does not matter: rank 1.8 between 5 and 10
    ([1, 2], 90, 1.9),
    ([7.0], 90, 7.0),
    ([3, 1, 2], 0, 1.0),
    ([3, 1, 2], 100, 3.0),
])
def test_percentile_known_values(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_matches_numpy_linear():
    import numpy as np

    rng = np.random.default_rng(0)
    values = list(rng.exponential(size=37))
    for q in (10, 50, 90, 99):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_rejects_bad_input():
    with pytest.raises(ValueError):
        percentile([], 90)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_has_p90():
    assert summarize(list(range(1, 11)), "s")["p90"] == pytest.approx(9.1)
