"""Run the real Snakemake workflow from Python: tooling of the tests and the pipeline benchmarks
(scripts/bench_pipeline.py, scripts/bench_default_pipeline.py), kept out of the enginebench library."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# This interpreter's snakemake, or another one (make parity-test: Snakemake's own environment beside the
# container-like one, as the docker route runs it)
SNAKEMAKE = os.environ.get("ENGINEBENCH_SNAKEMAKE") or str(Path(sys.executable).parent / "snakemake")


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


def job_times(log: str) -> list[dict]:
    """{"rule", "jobid", "start", "end"} (datetimes) of every job a Snakemake run finished, read from
    the timestamps its log prints before each job's start ("rule X:" ... "jobid: N") and end
    ("Finished jobid: N (Rule: X)"). One-second resolution."""
    started, finished, stamp, rule = {}, [], None, None
    for line in log.splitlines():
        if match := re.match(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$", line):
            stamp = datetime.datetime.strptime(match.group(1), "%a %b %d %H:%M:%S %Y")
        elif match := re.match(r"^(?:local)?(?:checkpoint|rule) (\w+):$", line):
            rule = match.group(1)
        elif (match := re.match(r"^\s+jobid: (\d+)$", line)) and rule is not None:
            started[match.group(1)] = (rule, stamp)
            rule = None
        elif match := re.match(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$", line):
            rule_name, start = started.get(match.group(1), (match.group(2), stamp))
            finished.append({"rule": rule_name, "jobid": int(match.group(1)), "start": start, "end": stamp})
    return finished
