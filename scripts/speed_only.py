"""Write the quality record of a placeholder model's engine: no quality is measured (verdict NOT
APPLICABLE), unless the engine was not built, which the record then says (NOT RUN / NO VERDICT)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from enginebench import results
from enginebench.cli import parse_spec, run_cli
from enginebench.scheduler import job_record
from enginebench.stages import upstream_problem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="JSON {variant, reason} (Plan.not_applicable_spec)")
    parser.add_argument("--engine", required=True, type=Path, help="the engine folder (its manifest is read)")
    parser.add_argument("--out", required=True, type=Path, help="quality record to write")
    args = parser.parse_args(argv)
    spec = parse_spec(args.spec)
    status = upstream_problem(args.engine) or {"status": "not_applicable", "reason": spec["reason"]}
    results.write(args.out, {"stage": "quality", "spec": spec, **status, "job": job_record()})
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
