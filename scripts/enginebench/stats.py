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

