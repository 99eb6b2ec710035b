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
    try:
        rerender(args.config, args.docs.resolve())
    except subprocess.CalledProcessError as err:  # the script printed its own error above
        print(f"rerender_report: {Path(err.cmd[1]).name} failed; {args.docs} is left as it was", file=sys.stderr)
        return err.returncode
    print(f"wrote {args.docs / 'report.md'} and the figures")
    return 0


def rerender(config: Path, docs: Path) -> None:
    plan = build_plan(load_config(config))
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        for name in ("host", *plan.config["models"]):
            shutil.copytree(docs / name, results / name)
        for model in plan.config["models"]:
            out_dir = results / model / "figures"
            shutil.rmtree(out_dir, ignore_errors=True)
            run(["figures.py", "--layout", spec_json(plan.figures_layout(model)), "--out-dir", out_dir], results, docs)
        report = Path(tmp) / "report.md"
        run(["report.py", "--layout", spec_json(plan.report_layout()), "--root", tmp, "--out", report], results, docs)
        # nothing of docs/ changes until the report and every figure are made
        for model in plan.config["models"]:
            for figure in (results / model / "figures").iterdir():
                shutil.copyfile(figure, docs / model / "figures" / figure.name)
        shutil.copyfile(report, docs / "report.md")


def run(args: list, results: Path, docs: Path) -> None:
    """One of our scripts on the copy under RESULTS; what it prints names the docs folder's files."""
    cmd = [sys.executable, SCRIPTS / args[0], *args[1:]]
    done = subprocess.run(cmd, cwd=results.parent, capture_output=True, text=True)
    sys.stderr.write(done.stderr.replace(str(results), str(docs)))
    if done.returncode:
        raise subprocess.CalledProcessError(done.returncode, cmd)


if __name__ == "__main__":
    sys.exit(main())
