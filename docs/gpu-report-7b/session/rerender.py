"""Re-draw the figures and re-render report.md of docs/gpu-report-7b/ from the result files kept there,
with the same layout the pipeline's rules pass (Plan.figures_layout / report_layout of the config), so a
re-run of one engine on the H200 (session 8: the compiled PyTorch engine) replaces that engine's files
and the report shows every recorded file as it is. Run from the repository root with the venv's python:

    .venv/bin/python docs/gpu-report-7b/session/rerender.py
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs/gpu-report-7b"
sys.path.insert(0, str(ROOT / "scripts"))
from enginebench.plan import build_plan, spec_json, validate_config  # noqa: E402

config = yaml.safe_load((ROOT / "config/qwen2.5-7b-gpu.yaml").read_text())
validate_config(config)
plan = build_plan(config)
with tempfile.TemporaryDirectory() as tmp:
    results = Path(tmp) / "results"
    results.mkdir()
    for name in ("host", "qwen2.5-7b"):
        shutil.copytree(DOCS / name, results / name)
    for model in config["models"]:
        out_dir = results / model / "figures"
        subprocess.run([sys.executable, ROOT / "scripts/figures.py", "--layout", spec_json(plan.figures_layout(model)),
                        "--out-dir", out_dir], cwd=tmp, check=True)
        for figure in out_dir.iterdir():
            shutil.copyfile(figure, DOCS / model / "figures" / figure.name)
    subprocess.run([sys.executable, ROOT / "scripts/report.py", "--layout", spec_json(plan.report_layout()),
                    "--root", tmp, "--out", DOCS / "report.md"], cwd=tmp, check=True)
print(f"wrote {DOCS / 'report.md'} and the figures")
