"""Load one engine in a fresh process and print the timings as JSON: the cold-load measurement.

Run by the bench stage as `python -m enginebench.loadprobe ...`, once per load repetition.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="engine spec JSON (Plan.engine_spec)")
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--engine", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trust-remote-code", action="store_true")
    args = parser.parse_args(argv)

    from .backends import get_backend

    spec = json.loads(args.spec)
    backend = get_backend(spec["backend"])
    imported = time.perf_counter()
    backend.load(args.snapshot, args.checkpoint, args.engine, spec["settings"], threads=args.threads,
                 trust_remote_code=args.trust_remote_code)
    loaded = time.perf_counter()
    print(json.dumps({
        "load_s": loaded - imported,
        "startup_s": imported - started,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
