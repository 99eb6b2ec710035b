"""Render the Markdown comparison report from the result files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from enginebench.cli import parse_spec, run_cli
from enginebench.io import write_text_atomic
from enginebench.report import render_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layout", required=True, help="report layout JSON (Plan.report_layout)")
    parser.add_argument("--root", type=Path, default=Path("."), help="folder that holds results/")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    write_text_atomic(args.out, render_report(parse_spec(args.layout), args.root))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
