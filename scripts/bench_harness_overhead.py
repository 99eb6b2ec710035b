"""How much does the harness add to an engine's decode speed? Prints, for each engine whose bench
result carries the engine's own counter (llama.cpp's perf context), our single-stream decode
tokens/s divided by the engine's own figure. Goal: >= 0.97 (the harness adds almost nothing).

Reads the bench results of a finished run (`make report`); measures nothing itself.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from enginebench.io import read_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", nargs="*", type=Path,
                        help="bench result JSONs (default: results/*/bench/*.json)")
    args = parser.parse_args(argv)
    files = args.results or sorted(Path("results").glob("*/bench/*.json"))
    shown = 0
    for path in files:
        result = read_json(path)
        metrics = result.get("metrics", {})
        ours, theirs = (metrics.get(key) for key in ("decode_tokens_per_s_single", "decode_tokens_per_s_single_engine"))
        if not ours or not theirs:
            continue
        ratios = [a / b for a, b in zip(ours["values"], theirs["values"], strict=True)]
        print(f"{path}: ours {ours['median']:.1f} tokens/s, engine's counter {theirs['median']:.1f} tokens/s, "
              f"ratio {statistics.median(ratios):.3f} (per repetition: "
              f"{', '.join(f'{r:.3f}' for r in ratios)}) -> {'meets' if min(ratios) >= 0.97 else 'misses'} 0.97")
        shown += 1
    if not shown:
        print("no bench result with an engine counter found: run `make report` first")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
