"""Record this host once: CPU, RAM, free disk, GPUs with compute capability and FP8 capability, and
measured memory bandwidth (host; device too where a GPU is present), and the all-reduce bandwidth
among the GPUs of the config's widest split."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from enginebench import results
from enginebench.cli import run_cli
from enginebench.preflight import run_preflight


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path, help="preflight JSON to write")
    parser.add_argument("--threads", type=int, default=1, help="threads reading host memory (the benches' cores)")
    parser.add_argument("--ranks", type=int, default=1,
                        help="the most GPUs one engine spans: the all-reduce among that many is measured (2 or more)")
    args = parser.parse_args(argv)
    results.write(args.out, run_preflight(args.out.parent, args.threads, args.ranks))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
