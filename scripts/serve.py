"""Serve one engine behind its own OpenAI-compatible server: check its answers, sweep its load."""

from __future__ import annotations

import sys

from enginebench.cli import run_cli, runtime_main
from enginebench.serve import run_serve


def main(argv: list[str] | None = None) -> int:
    return runtime_main("serve", __doc__, run_serve, argv, inputs=("samples",))


if __name__ == "__main__":
    sys.exit(run_cli(main))
