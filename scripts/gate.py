"""Collect every engine's quality verdict; with --fail-on-gate, exit 1 when any engine fails or has none.
Exit 1 also when a configured model was left out because its snapshot cannot be imported here (the
report, written before, lists it): the run is not complete until it is measured."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from enginebench import results
from enginebench.cli import parse_spec, run_cli
from enginebench.verdicts import gate_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="gate spec JSON (Plan.gate_spec)")
    parser.add_argument("--root", type=Path, default=Path("."), help="folder that holds results/")
    parser.add_argument("--fail-on-gate", action="store_true", help="exit 1 (writing nothing) if any engine fails")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    spec = parse_spec(args.spec)
    summary = gate_summary(spec, args.root)
    for engine in summary["engines"]:
        name = f"{engine['model']}/{engine['variant']}{' (predicted)' if engine['kind'] == 'predicted' else ''}"
        print(f"{name}: {engine['verdict']} {'; '.join(engine['reasons'])}".rstrip())
    if args.fail_on_gate and summary["failed"]:
        print(f"enginebench: quality gate failed for {len(summary['failed'])} engine(s):", file=sys.stderr)
        for line in summary["failed"]:
            print(f"  {line}", file=sys.stderr)
    for model, reason in spec["unfetchable"].items():
        print(f"enginebench: model {model} was not measured (the report lists it): {reason}", file=sys.stderr)
    if (args.fail_on_gate and summary["failed"]) or spec["unfetchable"]:
        return 1
    results.write(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
