"""Run the real Snakemake workflow from Python (tests and the pipeline benchmark)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def write_config(workdir: Path, config: dict) -> Path:
    path = Path(workdir) / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(workdir: Path, *args: str, config: Path | None = None, cores: int = 2) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", str(cores), *args]
    if config is not None:
        cmd += ["--configfile", str(config)]  # last: it takes every word after it as a file
    return subprocess.run(cmd, capture_output=True, text=True)


def planned_jobs(dry_run_output: str) -> list[tuple[str, str]]:
    """(rule, output) for every job of a `snakemake -n` listing; output is '' for target rules."""
    jobs, rule = [], None
    for line in dry_run_output.splitlines():
        if match := re.match(r"^(?:local)?rule (\w+):$", line):
            if rule is not None:
                jobs.append((rule, ""))
            rule = match.group(1)
        elif rule is not None and line.strip().startswith("output:"):
            jobs.append((rule, line.split(":", 1)[1].strip()))
            rule = None
    if rule is not None:
        jobs.append((rule, ""))
    return jobs
