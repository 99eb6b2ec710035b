"""Build one engine from its checkpoint (or record that the backend needs no build)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from enginebench.cli import parse_spec, run_cli
from enginebench.stages import build_engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="engine spec JSON (Plan.engine_spec)")
    parser.add_argument("--snapshot", required=True, type=Path)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="engine folder to create")
    args = parser.parse_args(argv)
    build_engine(parse_spec(args.spec), args.snapshot, args.checkpoint, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
