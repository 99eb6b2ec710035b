"""Prepare a TensorRT-LLM checkpoint's calibration data offline: the folder quantize.py reads as --calib_dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from enginebench.calibration import prepare_calibration
from enginebench.cli import parse_spec, run_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="calibration spec JSON (Plan.calibration_spec)")
    parser.add_argument("--snapshot", required=True, type=Path, help="the model's snapshot (its tokenizer)")
    parser.add_argument("--out", required=True, type=Path, help="calibration folder to create")
    args = parser.parse_args(argv)
    prepare_calibration(parse_spec(args.spec), args.snapshot, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
