"""Draw the report's figures of one model (PNG) from its bench and quality results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from enginebench.cli import parse_spec, run_cli
from enginebench.figures import FIGURES, SERVE_FIGURE, engine_points, served_points, write_figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layout", required=True,
                        help="the model's layout JSON (slug, variants, gate thresholds; Plan.figures_layout)")
    parser.add_argument("--root", type=Path, default=Path("."), help="folder that holds results/")
    parser.add_argument("--out-dir", required=True, type=Path, help=f"folder for {', '.join(FIGURES)} (.png)")
    args = parser.parse_args(argv)
    layout = parse_spec(args.layout)
    ran, missing = engine_points(args.root, layout["slug"], layout["variants"], layout["gate"])
    serving = None
    names = list(FIGURES)
    if layout["slo"] is not None:  # serve.enabled
        serving = (served_points(args.root, layout["slug"], layout["variants"], layout["gate"]), layout["slo"])
        names += list(SERVE_FIGURE)
    out = {name: args.out_dir / f"{name}.png" for name in names}
    write_figures(layout["slug"], ran, missing, layout["gate"], out, serving)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
