"""A report older than the results it should show is set aside when a run fails: the report job of a
run that stopped before it (a failed job upstream, `--keep-going` included) never ran, and the previous
report would stay at results/report.md looking current. On error, Snakemake's `onerror` calls this."""

from __future__ import annotations

import os
from pathlib import Path

from . import paths

RESULT_GLOBS = ("results/host/*.json", "results/*/bench/*.json", "results/*/samples/*.json",
                "results/*/quality/*.json", "results/*/predicted/*.json", "results/*/reference/*.json")
STALE_NAME = "report.stale.md"


def set_aside_stale_report(root: Path) -> str | None:
    """Move results/report.md to results/report.stale.md when a result file is newer than it; say so."""
    report = Path(root) / paths.REPORT
    if not report.exists():
        return None
    written = report.stat().st_mtime
    newer = sorted(str(p.relative_to(root)) for pattern in RESULT_GLOBS for p in Path(root).glob(pattern)
                   if p.stat().st_mtime > written)
    if not newer:
        return None
    os.replace(report, report.with_name(STALE_NAME))
    return (f"{paths.REPORT} predates {len(newer)} result file(s) of this run (first: {newer[0]}) and was not "
            f"rendered again: moved to {report.with_name(STALE_NAME).relative_to(root)}")
