"""Re-draw the figures and re-render report.md of a report kept under docs/ from the result files kept
beside it, with the layout the pipeline's rules pass (Plan.figures_layout / report_layout of the
config it was made with). For a report whose engines were re-run one at a time (the H200 sessions), or
to check that a change of the renderer changes the layout only. Run from the repository root:

    .venv/bin/python scripts/rerender_report.py --config config/config.yaml --docs docs/default-report
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from enginebench.plan import build_plan, load_config, spec_json

SCRIPTS = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, type=Path, help="the config the report was made with")
    parser.add_argument("--docs", required=True, type=Path, help="the folder holding host/ and one folder per model")
    args = parser.parse_args(argv)
    plan = build_plan(load_config(args.config))
    docs = args.docs.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        for name in ("host", *plan.config["models"]):
            shutil.copytree(docs / name, results / name)
        for model in plan.config["models"]:
            out_dir = results / model / "figures"
            shutil.rmtree(out_dir, ignore_errors=True)
            subprocess.run([sys.executable, SCRIPTS / "figures.py", "--layout", spec_json(plan.figures_layout(model)),
                            "--out-dir", out_dir], cwd=tmp, check=True)
            for figure in out_dir.iterdir():
                shutil.copyfile(figure, docs / model / "figures" / figure.name)
        subprocess.run([sys.executable, SCRIPTS / "report.py", "--layout", spec_json(plan.report_layout()),
                        "--root", tmp, "--out", docs / "report.md"], cwd=tmp, check=True)
    print(f"wrote {docs / 'report.md'} and the figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
