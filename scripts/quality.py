"""Measure one engine's output quality against the reference engine and give it a PASS/FAIL verdict."""

from __future__ import annotations

import sys

from enginebench.cli import run_cli, runtime_main
from enginebench.quality import run_quality


def main(argv: list[str] | None = None) -> int:
    return runtime_main("quality", __doc__, run_quality, argv,
                        inputs=("samples", "reference", "reference_samples"))


if __name__ == "__main__":
    sys.exit(run_cli(main))
