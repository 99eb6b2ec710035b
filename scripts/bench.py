"""Benchmark one engine: cold load time, then batched and single-stream generation speed."""

from __future__ import annotations

import sys

from enginebench.bench import record_history, run_bench
from enginebench.cli import run_cli, runtime_main


def main(argv: list[str] | None = None) -> int:
    return runtime_main("bench", __doc__, run_bench, argv, record=record_history)


if __name__ == "__main__":
    sys.exit(run_cli(main))
