"""Install what enginebench needs into a container's Python, pinning every package it already has,
and (with --snakemake-env) give Snakemake an environment of its own beside it.

Run inside the TensorRT-LLM container (scripts/trtllm_docker.sh does):
    python scripts/container_install.py -r envs/container.txt -r envs/llamacpp.txt \
        --snakemake-env .venv-container-snakemake
then run `.venv-container-snakemake/bin/snakemake ...`: its jobs run the container's own `python`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from enginebench.cli import run_cli
from enginebench.container_env import install, snakemake_env, watched_lines

SNAKEMAKE_REQUIREMENTS = Path(__file__).resolve().parents[1] / "envs" / "container-snakemake.txt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-r", "--requirement", action="append", type=Path, required=True,
                        help="requirements file of what to add (repeatable)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to install into (default: this one)")
    parser.add_argument("--constraints", type=Path, help="where to keep the constraints file (default: temporary)")
    parser.add_argument("--snakemake-env", type=Path, help="make (or update) Snakemake's own environment here")
    parser.add_argument("--snakemake-requirement", type=Path, default=SNAKEMAKE_REQUIREMENTS,
                        help=f"what that environment holds (default: {SNAKEMAKE_REQUIREMENTS.name})")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        before, after = install(args.python, args.requirement, args.constraints or Path(tmp) / "constraints.txt")
    print("before: " + " ".join(watched_lines(before)))
    print("after:  " + " ".join(watched_lines(after)))
    print(f"{len(before)} packages kept at their versions; {len(after) - len(before)} added")
    if args.snakemake_env:
        made = snakemake_env(args.python, args.snakemake_env, [args.snakemake_requirement])
        print(f"snakemake {made['snakemake']} in its own environment: {made['python']} (the container's packages "
              "unchanged)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
