"""Write one engine's greedy answers to the configured prompts."""

from __future__ import annotations

import sys

from enginebench.cli import run_cli, runtime_main
from enginebench.samples import run_samples


def main(argv: list[str] | None = None) -> int:
    return runtime_main("samples", __doc__, run_samples, argv)


if __name__ == "__main__":
    sys.exit(run_cli(main))
