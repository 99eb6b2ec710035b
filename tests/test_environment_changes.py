"""The environment never leaves stale results: a record made because a backend library was missing is
retried once it is importable. Real Snakemake runs on the tiny model; "missing" is llama-cpp-python
hidden from the interpreter (its distribution and module) by a sitecustomize on PYTHONPATH, in
Snakemake and in its jobs alike."""

import json
import os
import subprocess

from snakemake_run import REPO, SNAKEMAKE, write_config
from test_workflow import tiny_config

from enginebench import paths

HIDE_LLAMA_CPP = '''
import importlib.abc, importlib.machinery, sys

_find = importlib.machinery.PathFinder.find_distributions


def _find_visible(*args, **kwargs):
    return (d for d in _find(*args, **kwargs) if (d.metadata["Name"] or "").lower() != "llama_cpp_python")


class _Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "llama_cpp":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


importlib.machinery.PathFinder.find_distributions = staticmethod(_find_visible)
sys.meta_path.insert(0, _Hidden())
'''


def run(workdir, config, *args, env=None):
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2", *args,
           "--configfile", str(config)]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_unavailable_record_is_retried_once_the_library_is_importable(tmp_path, tiny_model):
    config = tiny_config(tiny_model)
    config["models"]["tiny"]["variants"] = {k: v for k, v in config["models"]["tiny"]["variants"].items()
                                            if k in ("fp32", "llama-f16")}
    config = write_config(tmp_path, config)
    shim = tmp_path / "hide-llama-cpp"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(HIDE_LLAMA_CPP)
    engine = tmp_path / paths.ENGINE.format(model="tiny", variant="llama-f16")
    target = str(engine.relative_to(tmp_path))

    missing = run(tmp_path, config, target, env={"PYTHONPATH": str(shim)})
    assert missing.returncode == 0, missing.stderr[-3000:]
    record = json.loads((engine / paths.MANIFEST).read_text())
    assert record["status"] == "unavailable" and "llama-cpp-python is not installed" in record["reason"]
    again = run(tmp_path, config, "-n", target, env={"PYTHONPATH": str(shim)})
    assert "Nothing to be done" in again.stdout + again.stderr  # the record stands while the cause does

    present = run(tmp_path, config, target)
    assert present.returncode == 0, present.stderr[-3000:]
    assert "rule checkpoint:" in present.stderr and "rule engine:" in present.stderr
    assert json.loads((engine / paths.MANIFEST).read_text())["status"] == "ok"
    (checkpoint,) = (tmp_path / "results/tiny/checkpoints").iterdir()
    assert json.loads((checkpoint / paths.MANIFEST).read_text())["status"] == "ok"
    assert any(p.suffix == ".gguf" for p in checkpoint.iterdir())


def test_rules_run_the_interpreter_snakemake_runs_under(tmp_path, tiny_model):
    """`.venv/bin/snakemake` with a PATH whose `python` is not the venv's (here none at all) still works."""
    config = write_config(tmp_path, tiny_config(tiny_model))
    snapshot = paths.SNAPSHOT.format(model="tiny")
    done = run(tmp_path, config, snapshot, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / snapshot / paths.MANIFEST).read_text())["source"]["kind"] == "local"
