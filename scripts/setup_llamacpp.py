"""Install llama-cpp-python built for this host: CUDA when an NVIDIA GPU is present (or GPU=1),
CPU otherwise; rebuild when the installed build is another one. Run by `make setup`. With --server,
compile llama-server from the same llama.cpp source and flavour instead (`make llama-server`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from enginebench.cli import run_cli
from enginebench.llamacpp_build import build_server, decide, install, plan_install


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--venv", required=True, type=Path, help="the virtual environment to install into")
    parser.add_argument("--version", required=True, help="llama-cpp-python version (envs/llamacpp.txt)")
    parser.add_argument("--gpu", default="auto",
                        help="1: CUDA build, 0: CPU build, auto: CUDA if nvidia-smi lists a GPU")
    parser.add_argument("--dry-run", action="store_true", help="print the decision, install nothing")
    parser.add_argument("--server", type=Path, metavar="DIR",
                        help="build llama-server into DIR (the serve stage's server) instead of installing")
    args = parser.parse_args(argv)
    build = decide(args.gpu)
    if args.server:
        print(f"llama-server: {build['flavour']} build ({build['reason']}); compiling takes ~15 min on 2 cores")
        if not args.dry_run:
            build_server(args.version, build, args.server)
        return 0
    plan = plan_install(args.venv, args.version, build)
    print(f"llama-cpp-python: {build['flavour']} build ({build['reason']}); CMAKE_ARGS={build['cmake_args']}")
    if plan["action"] == "build":
        print(f"llama-cpp-python: building ({plan['why']}); compiling takes 8-20 min on 2 cores, ~5 min for CUDA on 16")
    else:
        print(f"llama-cpp-python: {plan['why']}")
    if not args.dry_run:
        install(args.venv, args.version, plan)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
