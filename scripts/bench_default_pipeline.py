"""Benchmark the default pipeline after setup: `snakemake --cores N all` on config/config.yaml from
scratch (snapshot import included, `make setup` and the model package's install not) in a fresh
working directory, then the wall time and where it went per rule, from the job start and end times in
Snakemake's log. Prints figures; asserts nothing. Run it on an otherwise idle machine.

Goal (issue #22): at most 8 minutes on our 2-core machines, so that slower ones stay under 10 (issue
#13's goal).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from snakemake_run import REPO, job_times, snakemake

from enginebench.hostload import host_load, sample


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def per_rule(jobs: list[dict]) -> list[tuple[str, int, float]]:
    """(rule, jobs, summed job seconds), the costliest rule first."""
    total, count = defaultdict(float), defaultdict(int)
    for job in jobs:
        total[job["rule"]] += (job["end"] - job["start"]).total_seconds()
        count[job["rule"]] += 1
    return sorted(((rule, count[rule], total[rule]) for rule in total), key=lambda row: -row[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="run here and keep it (default: a temporary folder, removed)")
    parser.add_argument("--goal-min", type=float, default=8.0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="enginebench-default-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if (workdir / "results").exists():
            raise SystemExit(f"{workdir}/results exists: the benchmark runs from scratch, give an empty folder")
        when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        before = sample()
        done = snakemake(workdir, "all", config=REPO / "config" / "config.yaml", cores=args.cores)
        load = host_load(before)
        wall = load["wall_s"]
        log = done.stdout + done.stderr
    if done.returncode != 0:
        print(f"the default pipeline failed after {minutes(wall)}:\n{log[-3000:]}")
        return 1

    jobs = job_times(log)
    print(f"default pipeline after setup, from scratch: {minutes(wall)} wall "
          f"(snakemake --cores {args.cores} all, config/config.yaml; {when}; {platform.node()}, "
          f"{os.cpu_count()} CPUs)")
    others = "unknown" if load["other_share"] is None else f"{load['other_share']:.1%} of the host's CPU capacity"
    print(f"other processes meanwhile: {others}{' (busy host: the times are inflated)' if load['busy'] else ''}; "
          f"load average before {load['loadavg_before'][0]:.2f}, after {load['loadavg_after'][0]:.2f}")
    print(f"{len(jobs)} jobs; per rule, summed job time (jobs may overlap) and share of the wall time:")
    for rule, count, seconds in per_rule(jobs):
        print(f"  {rule:<22} {count:>3} jobs  {minutes(seconds):>14}  {seconds / wall:6.1%}")
    verdict = "meets" if wall <= args.goal_min * 60 else "misses"
    print(f"{verdict} the {args.goal_min:g} min goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
