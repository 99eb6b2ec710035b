"""One model that cannot be fetched does not take the others' report with it (issue 13): with
HF_HUB_OFFLINE=1 and a hub model missing from the Hugging Face cache, the real workflow measures the
tiny model, writes the report naming the missing model and why, and fails the run after it; once the
model is in the cache, the next run plans its snapshot and engines. Online, a hub that refuses the
model (gated, not found, no such revision) or cannot be reached leaves it out the same way."""

import http.server
import json
import shutil
import subprocess
import sys
import threading

import pytest
from snakemake_run import REPO, planned_jobs, snakemake, write_config

from enginebench import paths
from enginebench.plan import build_plan, validate_config
from enginebench.snapshot import LOCAL_SUFFIXES

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


class FakeHub(http.server.BaseHTTPRequestHandler):
    """Answers a file-metadata request the way the hub answers a refused one: the status and the
    X-Error-Code header that huggingface_hub 2.4.0 maps to its errors (utils/_http.py,
    hf_raise_for_status). The repo name picks the answer; the Authorization header is recorded."""
    answers = {"gated": (401, "GatedRepo"), "private": (401, "RepoNotFound"), "norevision": (404, "RevisionNotFound")}
    seen_auth: list = []

    def do_HEAD(self):
        FakeHub.seen_auth.append(self.headers.get("Authorization"))
        status, code = self.answers.get(self.path.split("/")[2], (500, None))
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *args):
        pass


@pytest.fixture()
def fake_hub(tmp_path, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("repo", "token", "reason"), [
    ("org/gated", None, "is gated and HF_TOKEN is not set: accept its terms on the hub"),
    ("org/gated", "hf_secret_never_printed", "is gated and HF_TOKEN has no access to it"),
    ("org/private", None, "no such repository on the hub (or it is private and HF_TOKEN is not set)"),
    ("org/norevision", None, f"the repository has no revision '{REVISION}'"),
])
def test_a_model_the_hub_refuses_is_left_out_with_the_reason(tmp_path, tiny_model, fake_hub, monkeypatch,
                                                              repo, token, reason):
    """Online, a model the hub will not serve is left out of the plan before any download (issue 13:
    a gated repo used to fail its snapshot job, and with it the report). The token is sent, never shown."""
    if token:
        monkeypatch.setenv("HF_TOKEN", token)
    cfg = config(tiny_model)
    cfg["models"]["offline"]["source"]["repo_id"] = repo
    FakeHub.seen_auth.clear()
    dry = snakemake(tmp_path, "-n", config=write_config(tmp_path, cfg))
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert f"enginebench: model offline is left out of this run: model {repo}@{REVISION}" in dry.stderr
    assert reason in dry.stderr
    assert not [job for job in planned_jobs(dry.stdout) if "results/offline/" in job[1]]
    assert ("bench", "results/tiny/bench/fp32.json") in planned_jobs(dry.stdout)
    if token:
        assert f"Bearer {token}" in FakeHub.seen_auth and token not in dry.stdout + dry.stderr


# In a fresh process: huggingface_hub reads HF_HUB_OFFLINE and HF_ENDPOINT when it is imported.
PLAN_UNFETCHABLE = f"""
import json, sys
sys.path.insert(0, {str(REPO / "scripts")!r})
from enginebench.plan import build_plan, validate_config
cfg = json.loads(sys.argv[1])
validate_config(cfg)
print(build_plan(cfg).unfetchable)
"""


def unfetchable_in_a_fresh_process(cfg: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PLAN_UNFETCHABLE, json.dumps(cfg)], capture_output=True, text=True,
                          cwd=cwd)


def test_an_unreachable_hub_leaves_the_model_out(tmp_path, fake_hub, monkeypatch):
    """The hub failing (HTTP 500) or not answering at all (a closed port) is a reason too; the
    plan is made again on the next run, so the model is taken up once the hub answers."""
    monkeypatch.chdir(tmp_path)
    cfg = config(tmp_path / "tiny")
    validate_config(cfg)
    failing = unfetchable_in_a_fresh_process(cfg, tmp_path)
    assert "the hub is unreachable or failing (HfHubHTTPError: Server error '500" in failing.stdout, failing.stderr
    closed = http.server.HTTPServer(("127.0.0.1", 0), FakeHub)  # bound, then closed: nothing listens there
    port = closed.server_address[1]
    closed.server_close()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    down = unfetchable_in_a_fresh_process(cfg, tmp_path)
    assert "the hub is unreachable or failing (ConnectError: " in down.stdout, down.stderr
