"""Run history: every build and bench appends one immutable record, so figures can be compared
across runs (build times swing between sessions; decode speed should not).

Records live in results/{model}/history/ as `{stage}-{name}-{UTC time}-{pid}.json`. A record is
written to a temporary file and hard-linked to its final name, which fails rather than replace an
existing record; a killed run leaves at most a `.*.tmp` file, which readers skip.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

from .environment import git_commit
from .scheduler import job_record

STABLE_SPREAD = 0.05  # a metric whose (max − min) / median across runs stays within 5 % is "stable"


def history_dir(model_dir: Path) -> Path:
    return Path(model_dir) / "history"


def append(model_dir: Path, stage: str, name: str, figures: dict) -> Path:
    """Add a record for `stage` of `name` (a variant or checkpoint slug); never touches another."""
    folder = history_dir(model_dir)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    record = {"time": now.isoformat(timespec="microseconds"), "host": platform.node(), "commit": git_commit(),
              "job": job_record(), "stage": stage, "name": name, "figures": figures}
    fd, tmp = tempfile.mkstemp(prefix=".record.", suffix=".tmp", dir=folder)
    final = folder / f"{stage}-{name}-{now.strftime('%Y%m%dT%H%M%S%fZ')}-{os.getpid()}.json"
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)
        os.link(tmp, final)  # FileExistsError rather than overwrite
    finally:
        os.unlink(tmp)
    return final


def records(model_dir: Path, stage: str, name: str) -> list[dict]:
    """The finished records of `stage` for `name`, oldest first."""
    folder = history_dir(model_dir)
    if not folder.is_dir():
        return []
    found = [json.loads(p.read_text()) for p in folder.glob(f"{stage}-{name}-*.json")]
    return sorted((r for r in found if r["name"] == name), key=lambda r: r["time"])


def spread(values: list[float]) -> float | None:
    """(max − min) / median of a metric across runs; None with fewer than two runs."""
    if len(values) < 2 or statistics.median(values) == 0:
        return None
    return (max(values) - min(values)) / statistics.median(values)
