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

from snakemake_run import REPO, snakemake, write_config


def generated_config(engines: int) -> dict:
    """`engines` engines, four per model (two PyTorch, two llama.cpp sharing one GGUF checkpoint).
    A dry run reads no model, so the local folders need not exist (hub models would be left out of
    the plan where HF_HUB_OFFLINE is set and they are not cached)."""
    variants = {"torch-fp32": {"backend": "torch", "dtype": "float32"},
                "torch-bf16": {"backend": "torch", "dtype": "bfloat16"},
                "llamacpp-q8_0": {"backend": "llamacpp", "quantization": "Q8_0"},
                "llamacpp-q4_k_m": {"backend": "llamacpp", "quantization": "Q4_K_M"}}
    models = {
        f"model-{i:03d}": {"source": {"kind": "local", "path": f"/models/model-{i:03d}"},
                           "baseline": "torch-fp32", "reference": "torch-fp32", "variants": variants}
        for i in range(-(-engines // len(variants)))
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
    config = REPO / "config" / "config.yaml"

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        default = [timed(tmp, "-n", config=config)[0] for _ in range(args.repeat)]
        print(report_line("dry run, default config", default))
        big = write_config(tmp, generated_config(args.engines))
        seconds, out = timed(tmp, "-n", config=big)
        jobs = out.count("rule bench:")
        runs = [seconds] + [timed(tmp, "-n", config=big)[0] for _ in range(args.repeat - 1)]
        print(report_line(f"dry run, generated config ({jobs} engines)", runs))

    if not (args.finished / "results" / "report.md").exists():
        print(f"no-op rerun: skipped, no finished report under {args.finished} (run `make report` first)")
    elif "Nothing to be done" not in timed(args.finished, "-n", "all", config=config)[1]:
        print(f"no-op rerun: skipped, the run under {args.finished} is not up to date (run `make report` first)")
    else:
        noop = [timed(args.finished, "all", config=config)[0] for _ in range(args.repeat)]
        print(report_line("no-op rerun of a finished report", noop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
