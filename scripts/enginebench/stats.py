"""Summary statistics that keep their raw values: median and spread, never a lone number."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def summarize(values: Sequence[float], unit: str) -> dict:
    """Median, mean, min, max and sample standard deviation of `values`, with the raw values."""
    if not values:
        raise ValueError("summarize() needs at least one value")
    vals = [float(v) for v in values]
    return {
        "unit": unit,
        "n": len(vals),
        "median": statistics.median(vals),
        "mean": statistics.fmean(vals),
        "min": min(vals),
        "max": max(vals),
        "stdev": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "values": vals,
    }


def relative_spread(summary: dict) -> float:
    """(max - min) / median: how far apart the repetitions were, as a fraction of the median."""
    if summary["median"] == 0:
        return 0.0
    return (summary["max"] - summary["min"]) / summary["median"]
