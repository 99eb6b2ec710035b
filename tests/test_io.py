import importlib.util
import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import REPO

from enginebench.io import atomic_dir, sha256_file, tree_bytes, write_json_atomic


def test_atomic_dir_success_replaces_target(tmp_path):
    target = tmp_path / "engine"
    target.mkdir()
    (target / "stale.bin").write_text("old")
    with atomic_dir(target) as tmp:
        assert tmp != target and tmp.parent == tmp_path
        (tmp / "new.bin").write_bytes(b"x" * 10)
    assert sorted(p.name for p in target.iterdir()) == ["new.bin"]
    assert tree_bytes(target) == 10
    assert [p.name for p in tmp_path.iterdir()] == ["engine"]


def test_atomic_dir_failure_leaves_no_output(tmp_path):
    target = tmp_path / "engine"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "half.bin").write_text("partial")
            raise RuntimeError("killed build")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_write_json_atomic_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "bench.json"
    write_json_atomic(path, {"ok": 1})
    circular = {}
    circular["self"] = circular
    with pytest.raises(ValueError):
        write_json_atomic(path, circular)
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]


def test_sha256_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_atomic_dir_removes_only_stale_tmp_folders(tmp_path):
    target = tmp_path / "engine"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    try:
        running = tmp_path / f".engine.tmp-{sleeper.pid}@{host}-abcd_123"  # a build started by hand, still running
        stale = [tmp_path / f".engine.tmp-{dead.pid}@{host}-x1y2z3w4", tmp_path / ".engine.tmp-k2j3h4g5",
                 tmp_path / ".engine.tmp-1@another-host-q1w2e3r4"]
        other_output = tmp_path / f".engine-2.tmp-{dead.pid}@{host}-a1b2c3d4"
        for folder in [running, *stale, other_output]:
            folder.mkdir()
            (folder / "half.bin").write_text("partial")
        with atomic_dir(target) as tmp:
            (tmp / "new.bin").write_text("x")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["engine", running.name, other_output.name])
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                    reason="the GGUF conversion it kills needs llama-cpp-python (not in the container-parity env)")
def test_killed_build_leaves_no_tmp_folder_after_the_rerun(tmp_path, tiny_model):
    """A real GGUF conversion killed with SIGKILL mid-write; its rerun builds it and leaves no litter."""
    import checkpoint as checkpoint_cli
    import snapshot as snapshot_cli

    from enginebench import paths
    from enginebench.plan import build_plan, spec_json, validate_config

    variants = {"fp32": {"backend": "torch", "dtype": "float32"}, "f16": {"backend": "llamacpp", "quantization": "F16"}}
    config = {"models": {"tiny": {"source": {"kind": "local", "path": str(tiny_model)}, "baseline": "fp32",
                                  "reference": "fp32", "variants": variants}}, "prompts": ["A"]}
    validate_config(config)
    plan = build_plan(config)
    snap = tmp_path / paths.SNAPSHOT.format(model="tiny")
    assert snapshot_cli.main(["--spec", spec_json(plan.snapshot_spec("tiny")), "--out", str(snap)]) == 0
    ckpt = plan.engines[("tiny", "f16")].checkpoint
    out = tmp_path / paths.CHECKPOINT.format(model="tiny", checkpoint=ckpt)
    args = ["--spec", spec_json(plan.checkpoint_spec("tiny", ckpt)), "--snapshot", str(snap), "--out", str(out)]
    job = subprocess.Popen([sys.executable, str(REPO / "scripts" / "checkpoint.py"), *args],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(p.is_file() for p in out.parent.glob(f".{out.name}.tmp-*/*")):  # writing into its tmp folder
        assert job.poll() is None and time.monotonic() < deadline, "the build ended before it could be killed"
        time.sleep(0.01)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert not out.exists() and list(out.parent.glob(f".{out.name}.tmp-*"))  # the litter this is about
    assert checkpoint_cli.main(args) == 0
    assert json.loads((out / paths.MANIFEST).read_text())["status"] == "ok"
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_a_report_older_than_this_runs_results_is_set_aside_on_error(tmp_path):
    """Snakemake's onerror (Snakefile) calls stale.set_aside_stale_report: a report that predates a result
    file is moved to report.stale.md with a sentence; a report newer than every result stays."""
    import os

    from enginebench.stale import set_aside_stale_report

    report = tmp_path / "results" / "report.md"
    bench = tmp_path / "results" / "m" / "bench" / "v.json"
    bench.parent.mkdir(parents=True)
    bench.write_text("{}")
    report.write_text("# old")
    os.utime(bench, (1_000, 1_000))
    os.utime(report, (2_000, 2_000))
    assert set_aside_stale_report(tmp_path) is None and report.exists()  # current: left alone
    os.utime(bench, (3_000, 3_000))  # this run wrote a result, then failed before the report
    message = set_aside_stale_report(tmp_path)
    assert message.startswith("results/report.md predates 1 result file(s) of this run (first: results/m/bench/v.json)")
    assert not report.exists() and (tmp_path / "results" / "report.stale.md").read_text() == "# old"
    assert set_aside_stale_report(tmp_path) is None  # no report: nothing to do
