"""Benchmark the pipeline itself: dry-run time of the default config and of a generated 100-engine
config, and the time of a no-op rerun of a finished report. Prints figures; asserts nothing.

Goal (issue #2 / #6): each at most 3 s on our 2-core machines; Snakemake's own start-up is 1-2 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from enginebench.workflow import REPO, snakemake, write_config


def generated_config(engines: int) -> dict:
    """`engines` torch engines over hub models (a dry run downloads nothing)."""
    dtypes = ["float32", "bfloat16", "float16"]
    models = {}
    for i in range((engines + len(dtypes) - 1) // len(dtypes)):
        variants = {f"torch-{d}": {"backend": "torch", "dtype": d} for d in dtypes}
        models[f"model-{i:03d}"] = {
            "source": {"kind": "hub", "repo_id": f"org/model-{i:03d}", "revision": "0" * 40},
            "baseline": "torch-float32", "variants": variants,
        }
    return {"models": models, "prompts": ["Hello"]}


def timed(workdir: Path, *args: str, config: Path | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = snakemake(workdir, *args, config=config)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds, done.stdout + done.stderr


def report_line(name: str, runs: list[float], goal: float = 3.0) -> str:
    med = statistics.median(runs)
    verdict = "meets" if med <= goal else "misses"
    return (f"{name:<44} median {med:5.2f} s  (min {min(runs):.2f}, max {max(runs):.2f}, n={len(runs)})"
            f"  {verdict} the {goal:.0f} s goal")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--engines", type=int, default=100, help="engines in the generated config")
    parser.add_argument("--finished", type=Path, default=REPO,
                        help="working directory of a finished `make report`, for the no-op rerun")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        default = [timed(tmp, "-n", config=REPO / "config" / "config.yaml")[0] for _ in range(args.repeat)]
        print(report_line("dry run, default config", default))
        big = write_config(tmp, generated_config(args.engines))
        seconds, out = timed(tmp, "-n", config=big)
        jobs = out.count("rule bench:")
        runs = [seconds] + [timed(tmp, "-n", config=big)[0] for _ in range(args.repeat - 1)]
        print(report_line(f"dry run, generated config ({jobs} engines)", runs))

    if (args.finished / "results" / "report.md").exists():
        noop = []
        for _ in range(args.repeat):
            seconds, out = timed(args.finished, "results/report.md", config=REPO / "config" / "config.yaml")
            if "Nothing to be done" not in out:
                print("no-op rerun: the finished run was not up to date; it ran jobs (timing discarded)")
                return 1
            noop.append(seconds)
        print(report_line("no-op rerun of a finished report", noop))
    else:
        print(f"no-op rerun: skipped, no finished report under {args.finished} (run `make report` first)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
