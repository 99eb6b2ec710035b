"""Summary statistics that keep their raw values: median, p90 and spread, never a lone number."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the two nearest ranks (numpy's default method)."""
    if not values:
        raise ValueError("percentile() needs at least one value")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0-100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float], unit: str) -> dict:
    """Median, p90, mean, min, max and sample standard deviation of `values`, with the raw values."""
    if not values:
        raise ValueError("summarize() needs at least one value")
    vals = [float(v) for v in values]
    return {
        "unit": unit,
        "n": len(vals),
        "median": statistics.median(vals),
        "p90": percentile(vals, 90),
        "mean": statistics.fmean(vals),
        "min": min(vals),
        "max": max(vals),
        "stdev": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "values": vals,
    }
