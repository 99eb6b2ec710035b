"""Build one backend checkpoint from a snapshot (or record that the backend needs none)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from enginebench.cli import parse_spec, run_cli
from enginebench.stages import build_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="checkpoint spec JSON (Plan.checkpoint_spec)")
    parser.add_argument("--snapshot", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="checkpoint folder to create")
    args = parser.parse_args(argv)
    build_checkpoint(parse_spec(args.spec), args.snapshot, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
