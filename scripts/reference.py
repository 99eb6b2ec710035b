"""Score the eval text with a model's reference engine: its next-token distributions, for the quality stage."""

from __future__ import annotations

import sys

from enginebench.cli import run_cli, runtime_main
from enginebench.quality import run_reference


def main(argv: list[str] | None = None) -> int:
    return runtime_main("reference", __doc__, run_reference, argv)


if __name__ == "__main__":
    sys.exit(run_cli(main))
