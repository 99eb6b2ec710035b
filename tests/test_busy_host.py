"""A bench measured while another process burns a core is flagged busy, in its result and in the report,
and the report calls no winner from it. Real engines (PyTorch, llama.cpp) on the tiny model."""

import json
import os
import signal
import subprocess
import sys

import pytest
import recorded
import reportparse
from cliflow import run_pipeline

from enginebench import paths
from enginebench.hostload import BUSY_SHARE

CONFIG = {
    "models": {"tiny": {"source": {"kind": "local", "path": "?"}, "baseline": "fp32", "reference": "fp32",
                        "chat_template": False,
                        "variants": {"fp32": {"backend": "torch", "dtype": "float32"},
                                     "llama-f16": {"backend": "llamacpp", "quantization": "F16"}}}},
    "prompts": ["The function returns", "A module is"],
    "bench": {"max_new_tokens": 8, "warmup": 1, "repetitions": 2, "load_repetitions": 1, "batch_sizes": [1, 2]},
    "samples": {"max_new_tokens": 8},
    "quality": {"windows": 2, "window_tokens": 64, "top_k": 16},
}


@pytest.fixture(scope="module")
def busy_run(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("busy")
    # Not a child of this process (the pipeline's CLIs may run in it, and a bench counts its own
    # descendants as itself): started by a go-between that exits, so it is re-parented away.
    spawn = ("import subprocess, sys\n"  # the burner must not hold the go-between's stdout open
             "print(subprocess.Popen([sys.executable, '-c', 'while True: pass'], start_new_session=True,\n"
             "                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)")
    burner = int(subprocess.run([sys.executable, "-c", spawn], capture_output=True, text=True, check=True).stdout)
    try:
        plan = run_pipeline(CONFIG, tiny_model, root)
    finally:
        os.kill(burner, signal.SIGKILL)
    return root, plan


def test_bench_beside_a_burnt_core_is_flagged_busy(busy_run):
    busy_run, _ = busy_run
    for variant in ("fp32", "llama-f16"):
        load = json.loads((busy_run / paths.BENCH.format(model="tiny", variant=variant)).read_text())["host_load"]
        assert load["busy"] is True and load["other_share"] >= BUSY_SHARE
        assert load["other_cpu_s"] > 0.3 * load["wall_s"]  # most of a core, whatever else the host ran
        assert len(load["loadavg_before"]) == len(load["loadavg_after"]) == 3


def test_report_flags_the_busy_host_and_calls_no_winner(busy_run):
    root, plan = busy_run
    found = recorded.findings_of(root, plan, "tiny")
    assert set(found["answer"]["busy"]) == {"fp32", "llama-f16"} and not found["answer"]["picks"]
    single = reportparse.table((root / paths.REPORT).read_text(), "How fast: one request at a time")
    assert single["fp32"]["Tokens/s"].endswith("(busy host)")  # the figure is shown, flagged


def test_a_living_child_counts_as_the_bench_itself():
    """torch.compile's worker pool lives on beside the bench process: its CPU time is the bench's own,
    not another process's (getrusage counts only children waited for)."""
    from enginebench.hostload import _own_seconds

    before = _own_seconds()
    burn = "import time\nwhile time.process_time() < 1.0: pass\nprint('done', flush=True)\ntime.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "done\n"  # 1 s of CPU burnt, still alive
        assert _own_seconds() - before >= 0.9
    finally:
        child.kill()
        child.wait()


def test_the_preflight_beside_a_burnt_core_measures_again_then_says_it_was_busy(busy_run):
    """The host bandwidth (the bound of every CPU engine) is sampled for other processes' CPU as a bench
    is: busy, it is measured again (preflight.BUSY_ATTEMPTS in all), then kept with the flag, which the
    report's host lines state."""
    from enginebench.preflight import BUSY_ATTEMPTS

    root, _ = busy_run
    host = json.loads((root / paths.PREFLIGHT).read_text())["bandwidth"]["host"]
    assert host["host_load"]["busy"] is True and host["attempts"] == BUSY_ATTEMPTS
    lines = reportparse.section((root / paths.REPORT).read_text(), "Answer").splitlines()  # host lines too
    (line,) = [x for x in lines if x.startswith("- Memory bandwidth, host: ")]
    assert f"after {BUSY_ATTEMPTS} attempts: the bounds below may be too low" in line
