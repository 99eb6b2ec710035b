"""One rank of a tensor-parallel torch engine (started by torchrun: enginebench.tensor_parallel.run)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from enginebench.cli import run_cli
from enginebench.tensor_parallel import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snapshot", required=True, type=Path)
    parser.add_argument("--settings", required=True, help="the torch variant's settings (JSON), parallel included")
    parser.add_argument("--request", required=True, type=Path,
                        help="JSON: prompts (token ids), max_new_tokens, stop_ids")
    parser.add_argument("--out", required=True, type=Path, help="answers JSON (rank 0 writes it)")
    args = parser.parse_args(argv)
    request = json.loads(args.request.read_text())
    generate(args.snapshot, json.loads(args.settings), request["prompts"], request["max_new_tokens"],
             request["stop_ids"], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
