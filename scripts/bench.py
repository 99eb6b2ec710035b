"""Benchmark one engine: cold load time, then batched and single-stream generation speed."""

from __future__ import annotations

import argparse
import sys

from enginebench.bench import run_bench
from enginebench.cli import add_runtime_args, parse_spec, run_cli, runtime_paths
from enginebench.io import write_json_atomic
from enginebench.stages import skipped_result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_runtime_args(parser)
    args = parser.parse_args(argv)
    paths = runtime_paths(args)
    spec = parse_spec(args.spec)
    result = skipped_result("bench", spec, paths) or run_bench(spec, paths, args.threads)
    write_json_atomic(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
