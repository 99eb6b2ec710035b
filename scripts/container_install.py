"""Install what enginebench needs into a container's Python, pinning every package it already has.

Run inside the TensorRT-LLM container (scripts/trtllm_docker.sh does):
    python scripts/container_install.py -r envs/container.txt -r envs/llamacpp.txt
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from enginebench.cli import run_cli
from enginebench.container_env import install, watched_lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-r", "--requirement", action="append", type=Path, required=True,
                        help="requirements file of what to add (repeatable)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to install into (default: this one)")
    parser.add_argument("--constraints", type=Path, help="where to keep the constraints file (default: temporary)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        before, after = install(args.python, args.requirement, args.constraints or Path(tmp) / "constraints.txt")
    print("before: " + " ".join(watched_lines(before)))
    print("after:  " + " ".join(watched_lines(after)))
    print(f"{len(before)} packages kept at their versions; {len(after) - len(before)} added")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
