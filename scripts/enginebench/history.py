"""Run history: every build and bench appends one immutable record, so figures can be compared
across runs (build times swing between sessions; decode speed should not).

Records live in results/{model}/history/ as `{stage}-{name}-{UTC time}-{pid}.json`. A record is
written to a temporary file and hard-linked to its final name, which fails rather than replace an
existing record; a killed run leaves at most a `.*.tmp` file, which readers skip.

Each record keeps a fingerprint of the conditions it was measured under (the job's spec: engine
settings, bench sweep, prompts), so that runs made under other settings are never compared with it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

from . import results
from .environment import git_commit
from .scheduler import job_record

STABLE_SPREAD = 0.05  # a metric whose (max − min) / median across runs stays within 5 % is "stable"


def history_dir(model_dir: Path) -> Path:
    return Path(model_dir) / "history"


def fingerprint(conditions: dict) -> str:
    """A short hash of the conditions a figure was measured under (key order does not matter)."""
    return hashlib.sha256(json.dumps(conditions, sort_keys=True).encode()).hexdigest()[:16]


def append(model_dir: Path, stage: str, name: str, figures: dict, conditions: str) -> Path:
    """Add a record for `stage` of `name` (a variant or checkpoint slug), measured under `conditions`
    (the fingerprint of the job's spec); never touches another."""
    folder = history_dir(model_dir)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    record = {"time": now.isoformat(timespec="microseconds"), "host": platform.node(), "commit": git_commit(),
              "job": job_record(), "stage": stage, "name": name, "conditions": conditions,
              "figures": figures, "record_version": results.VERSION}
    if (what := results.problem(record, "history")) is not None:
        raise results.RecordError(f"{folder}: refusing to write a run-history record that {what}")
    fd, tmp = tempfile.mkstemp(prefix=".record.", suffix=".tmp", dir=folder)
    final = folder / f"{stage}-{name}-{now.strftime('%Y%m%dT%H%M%S%fZ')}-{os.getpid()}.json"
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)
        os.link(tmp, final)  # FileExistsError rather than overwrite
    finally:
        os.unlink(tmp)
    return final


def records(model_dir: Path, stage: str, name: str, conditions: str | None) -> list[dict]:
    """The finished records of `stage` for `name` measured under `conditions` (a fingerprint), oldest
    first. Records made under other conditions, or before records kept them, are left out: they do not
    compare. None (an artifact from before fingerprints were kept) matches nothing."""
    folder = history_dir(model_dir)
    if conditions is None or not folder.is_dir():
        return []
    found = [results.read(p, "history") for p in folder.glob(f"{stage}-{name}-*.json")]
    return sorted((r for r in found if r["name"] == name and r.get("conditions") == conditions),
                  key=lambda r: r["time"])


def spread(values: list[float]) -> float | None:
    """(max − min) / median of a metric across runs; None with fewer than two runs."""
    if len(values) < 2 or statistics.median(values) == 0:
        return None
    return (max(values) - min(values)) / statistics.median(values)
