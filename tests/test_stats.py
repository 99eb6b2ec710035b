import pytest

from enginebench.stats import summarize


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
