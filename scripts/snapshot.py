"""Import a model snapshot (hub, local folder, packaged model or placeholder weights) into a results folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from enginebench.cli import parse_spec, run_cli
from enginebench.snapshot import import_snapshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="snapshot spec JSON (Plan.snapshot_spec)")
    parser.add_argument("--out", required=True, type=Path, help="snapshot folder to create")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (placeholder weights are drawn in parallel)")
    args = parser.parse_args(argv)
    import_snapshot(parse_spec(args.spec), args.out, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
