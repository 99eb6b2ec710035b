"""One model that cannot be fetched does not take the others' report with it (issue 13): with
HF_HUB_OFFLINE=1 and a hub model missing from the Hugging Face cache, the real workflow measures the
tiny model, writes the report naming the missing model and why, and fails the run after it; once the
model is in the cache, the next run plans its snapshot and engines."""

import json
import shutil
import subprocess
import sys

import pytest

from enginebench import paths
from enginebench.plan import build_plan, validate_config
from enginebench.snapshot import LOCAL_SUFFIXES
from enginebench.workflow import REPO, planned_jobs, snakemake, write_config

REPO_ID, REVISION = "enginebench-test/not-cached", "0123456789abcdef0123456789abcdef01234567"
MISSING = f"model {REPO_ID}@{REVISION} is not available offline"


def config(tiny_model) -> dict:
    fp32 = {"fp32": {"backend": "torch", "dtype": "float32"}}
    return {
        "models": {
            "tiny": {"source": {"kind": "local", "path": str(tiny_model)}, "baseline": "fp32", "reference": "fp32",
                     "chat_template": False, "variants": fp32},
            "offline": {"source": {"kind": "hub", "repo_id": REPO_ID, "revision": REVISION}, "baseline": "fp32",
                        "reference": "fp32", "variants": fp32},
        },
        "prompts": ["The function returns"],
        "bench": {"max_new_tokens": 4, "warmup": 0, "repetitions": 1, "load_repetitions": 1, "batch_sizes": [1]},
        "samples": {"max_new_tokens": 4},
        "quality": {"windows": 1, "window_tokens": 32, "top_k": 8},
    }


def cache(hf_home, tiny_model):
    """Put the tiny model into the Hugging Face cache as REPO_ID at REVISION (the cache's own layout)."""
    folder = hf_home / "hub" / f"models--{REPO_ID.replace('/', '--')}" / "snapshots" / REVISION
    shutil.copytree(tiny_model, folder)
    return folder


@pytest.fixture()
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf"


def test_report_renders_without_the_model_that_cannot_be_fetched(tmp_path, tiny_model, offline):
    path = write_config(tmp_path, config(tiny_model))
    dry = snakemake(tmp_path, "-n", config=path)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert f"enginebench: model offline is left out of this run: {MISSING}" in dry.stderr
    assert not [job for job in planned_jobs(dry.stdout) if "results/offline/" in job[1]]

    done = snakemake(tmp_path, config=path)
    assert done.returncode != 0  # loud: the run is not complete
    assert f"enginebench: model offline was not measured (the report lists it): {MISSING}" in done.stderr
    report = (tmp_path / "results/report.md").read_text()
    assert f"- `offline`: {MISSING}" in report
    assert "## tiny" in report and "## offline" not in report
    assert (tmp_path / "results/tiny/quality/fp32.json").exists()
    assert not (tmp_path / "results/offline").exists() and not (tmp_path / "results/quality-gate.json").exists()

    # Once the model is in the cache the plan takes it up again, from its snapshot on; tiny stays as it is.
    cache(offline, tiny_model)
    dry = snakemake(tmp_path, "-n", config=path)
    jobs = planned_jobs(dry.stdout)
    assert ("snapshot", "results/offline/snapshot") in jobs and ("bench", "results/offline/bench/fp32.json") in jobs
    assert not [job for job in jobs if "results/tiny/" in job[1]]


def test_a_cached_hub_model_is_imported_offline(tmp_path, tiny_model, offline):
    """Offline, huggingface_hub's snapshot_download with a local_dir never looks in the cache: the
    snapshot stage copies the cached revision's files instead (the real CLI, in its own process)."""
    cached = cache(offline, tiny_model)
    (cached / "pytorch_model.bin").write_bytes(b"pickled weights are never imported")
    spec = json.dumps({"source": {"kind": "hub", "repo_id": REPO_ID, "revision": REVISION}, "trust_remote_code": False})
    out = tmp_path / "snap"
    done = subprocess.run([sys.executable, str(REPO / "scripts/snapshot.py"), "--spec", spec, "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out / "config.json").read_bytes() == (tiny_model / "config.json").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [p.name for p in tiny_model.iterdir() if p.suffix in LOCAL_SUFFIXES] + ["manifest.json"])


def test_only_a_snapshot_not_yet_imported_needs_the_cache(tmp_path, monkeypatch):
    """The plan (in this process: HF_HUB_OFFLINE=1 from conftest, an empty cache) leaves the hub
    model out, unless its snapshot was imported by an earlier run: then nothing needs fetching."""
    monkeypatch.chdir(tmp_path)
    cfg = config(tmp_path / "tiny")
    validate_config(cfg)
    plan = build_plan(cfg)
    assert plan.unfetchable == {"offline": f"{MISSING} (HF_HUB_OFFLINE is set or the hub is unreachable): "
                                           "download it on a connected machine, or use a `local` source"}
    assert plan.models_to_measure == ["tiny"] and {m for m, _ in plan.all_engines()} == {"tiny"}
    snapshot = tmp_path / paths.SNAPSHOT.format(model="offline")
    snapshot.mkdir(parents=True)
    (snapshot / paths.MANIFEST).write_text("{}")
    assert build_plan(cfg).unfetchable == {}
