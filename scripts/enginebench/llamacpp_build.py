"""Which llama-cpp-python build this host gets (CUDA or CPU), and installing it when the installed
build differs. llama-cpp-python has no wheels on PyPI: pip compiles it from the sdist with
CMAKE_ARGS, and pip's wheel cache does not key on CMAKE_ARGS, so a cached CPU wheel would be
reused for a CUDA install. GPU builds therefore bypass the cache (and are never written to it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .environment import gpus
from .errors import EngineBenchError, StageUnavailable

COMMON_ARGS = ["-DLLAVA_BUILD=OFF"]  # text only: no multimodal library


def cuda_architectures(found: list[dict]) -> str:
    """CMAKE_CUDA_ARCHITECTURES for the GPUs present (compute capability 9.0 -> "90"), else native."""
    archs = sorted({"{}{}".format(*g["compute_capability"]) for g in found})
    return ";".join(archs) or "native"


def decide(gpu: str, found: list[dict] | None = None) -> dict:
    """The build for `gpu` = "1" (CUDA), "0" (CPU) or "auto" (CUDA when nvidia-smi lists a GPU)."""
    if gpu not in ("auto", "0", "1"):
        raise EngineBenchError(f"GPU={gpu!r}: use 1 (CUDA build), 0 (CPU build) or auto")
    found = gpus() if found is None else found
    if gpu == "1" or (gpu == "auto" and found):
        reason = "GPU=1" if gpu == "1" else f"nvidia-smi lists {len(found)} GPU(s): {found[0]['name']}"
        args = [*COMMON_ARGS, "-DGGML_CUDA=on", f"-DCMAKE_CUDA_ARCHITECTURES={cuda_architectures(found)}"]
        return {"flavour": "cuda", "cmake_args": " ".join(args), "reason": reason}
    reason = "GPU=0" if gpu == "0" else "no NVIDIA GPU found (nvidia-smi absent or lists none)"
    return {"flavour": "cpu", "cmake_args": " ".join(COMMON_ARGS), "reason": reason}


def installed_version(python: Path) -> str | None:
    done = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('llama_cpp_python'))"],
                          capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def stamp_path(venv: Path) -> Path:
    return Path(venv) / ".llamacpp-build.json"


def read_stamp(venv: Path) -> dict | None:
    return read_stamp_file(stamp_path(venv))


def read_stamp_file(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def plan_install(venv: Path, version: str, build: dict) -> dict:
    """What to do: nothing when this version and build flavour are installed, else (re)build."""
    wanted = {"version": version, **{k: build[k] for k in ("flavour", "cmake_args")}}
    stamp = read_stamp(venv)
    installed = installed_version(Path(venv) / "bin" / "python")
    if installed == version and stamp == wanted:
        return {"action": "none", "wanted": wanted, "why": f"llama-cpp-python {version} ({build['flavour']}) installed"}
    if installed is None:
        why = "not installed"
    elif installed != version:
        why = f"{installed} installed, {version} wanted"
    elif stamp is None:  # installed before builds were recorded: the CPU build of `make setup`
        why = "installed build unrecorded" if build["flavour"] != "cpu" else None
    else:
        why = f"installed build is {stamp.get('flavour')} ({stamp.get('cmake_args')}), {build['flavour']} wanted"
    if why is None:
        return {"action": "record", "wanted": wanted, "why": "CPU build already installed"}
    return {"action": "build", "wanted": wanted, "why": why,
            "use_cache": build["flavour"] == "cpu" and (stamp is None or stamp.get("flavour") == "cpu")}


def install(venv: Path, version: str, plan: dict) -> None:
    """Carry out `plan_install`'s plan; the stamp is written only after a successful install."""
    if plan["action"] == "build":
        pip = [str(Path(venv) / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        # The build itself without its dependencies (--force-reinstall would reinstall numpy too),
        # then a plain install that adds the dependencies a fresh venv lacks (diskcache...).
        build = [*pip, "--force-reinstall", "--no-deps", *([] if plan["use_cache"] else ["--no-cache-dir"]),
                 f"llama-cpp-python=={version}"]
        env = {**os.environ, "CMAKE_ARGS": plan["wanted"]["cmake_args"]}
        for cmd in (build, [*pip, f"llama-cpp-python=={version}"]):
            print("+ CMAKE_ARGS='{}' {}".format(env["CMAKE_ARGS"], " ".join(cmd)), file=sys.stderr, flush=True)
            if subprocess.run(cmd, env=env).returncode != 0:
                raise EngineBenchError(f"installing llama-cpp-python {version} ({plan['wanted']['flavour']}) "
                                       "failed; see pip's output above")
    if plan["action"] != "none":
        tmp = stamp_path(venv).with_suffix(".tmp")
        tmp.write_text(json.dumps(plan["wanted"], indent=1) + "\n")
        tmp.rename(stamp_path(venv))


# llama-server: the serve stage's server for llama.cpp engines, compiled from the llama.cpp source that
# the installed llama-cpp-python was built from (the sdist's vendor/llama.cpp) with the same flavour,
# as one static binary (no shared library of another build can be picked up at run time).
SERVER_DIR = Path(os.environ.get("ENGINEBENCH_LLAMA_SERVER_DIR",
                                 Path(__file__).resolve().parents[2] / "vendor/llama-server"))
SERVER_ARGS = ["-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_TESTS=OFF",
               "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF",
               "-DLLAMA_OPENSSL=OFF", "-DLLAMA_CURL=OFF", "-DBUILD_SHARED_LIBS=OFF", "-DCMAKE_BUILD_TYPE=Release"]


def server_binary() -> Path:
    return SERVER_DIR / "llama-server"


def server_stamp() -> dict | None:
    return read_stamp_file(SERVER_DIR / "build.json")


def engines_build() -> dict:
    """The llama-cpp-python this Python loads engines with: its version and flavour (CUDA where it can
    offload), asked of the library itself (a venv's stamp or an air-gapped host's install alike), in a
    child process: a CUDA build's library shares a process badly with torch (llamacpp_backend)."""
    probe = ("import importlib.metadata as m, llama_cpp; "
             "print(m.version('llama_cpp_python'), 'cuda' if llama_cpp.llama_supports_gpu_offload() else 'cpu')")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise StageUnavailable(f"llama_cpp cannot be imported here ({done.stderr.strip().splitlines()[-1:]}): the "
                               "llama.cpp engines were not built by this Python")
    version, flavour = done.stdout.split()[-2:]
    return {"version": version, "flavour": flavour}


def server_problem() -> str | None:
    """Why the llama-server here cannot serve this process's llama.cpp engines (not built, built from
    another llama-cpp-python version or for another flavour), else None."""
    stamp = server_stamp()
    if stamp is None or not server_binary().exists():
        return f"llama-server is not built in {SERVER_DIR}: `make llama-server` compiles it (~15 min on 2 cores)"
    engines = engines_build()
    if (stamp.get("version"), stamp.get("flavour")) != (engines["version"], engines["flavour"]):
        return (f"llama-server was built from llama-cpp-python {stamp.get('version')} ({stamp.get('flavour')}), the "
                f"engines are {engines['version']} ({engines['flavour']}): `make llama-server` rebuilds it")
    return None


def server_offloads() -> bool:
    return (server_stamp() or {}).get("flavour") == "cuda"


def build_server(version: str, build: dict, out: Path = SERVER_DIR, jobs: int | None = None,
                 sdist: Path | None = None) -> None:
    """Compile llama-server from llama-cpp-python `version`'s sdist (downloaded, or `sdist` where given:
    an air-gapped host's bundle) into `out` (a fresh folder renamed into place at the end, its build.json
    last), unless the same build is there."""
    wanted = {"version": version, "flavour": build["flavour"], "cmake_args": build["cmake_args"]}
    if read_stamp_file(Path(out) / "build.json") == wanted and (Path(out) / "llama-server").exists():
        print(f"llama-server: llama-cpp-python {version} ({build['flavour']}) already built in {out}")
        return
    import shutil
    import tarfile
    import tempfile

    if shutil.which("cmake") is None:
        raise EngineBenchError("building llama-server needs cmake, which is not on PATH (apt install cmake, or "
                               "pip install cmake into the venv)")
    with tempfile.TemporaryDirectory(prefix="llama-server-") as tmp:
        tmp = Path(tmp)
        if sdist is None:
            download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        "-d", str(tmp), f"llama-cpp-python=={version}"]
            if subprocess.run(download).returncode != 0:
                raise EngineBenchError(f"downloading the llama-cpp-python {version} sdist failed; see pip's output "
                                       "above")
            sdist = next(tmp.glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(sdist) as archive:
            archive.extractall(tmp, filter="data")
        source = next(tmp.glob("llama_cpp_python-*/vendor/llama.cpp"))
        flags = [a for a in build["cmake_args"].split() if not a.startswith("-DLLAVA")]
        steps = [["cmake", "-S", str(source), "-B", str(tmp / "build"), *SERVER_ARGS, *flags],
                 ["cmake", "--build", str(tmp / "build"), "--target", "llama-server",
                  "-j", str(jobs or os.cpu_count())]]
        for cmd in steps:
            print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
            if subprocess.run(cmd, stdout=sys.stderr).returncode != 0:
                raise EngineBenchError(f"building llama-server failed at `{' '.join(cmd[:2])}`; see its output above")
        staged = Path(out).with_name(f".{Path(out).name}.tmp")  # beside `out`: the renames stay on one file system
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(parents=True)
        shutil.copy2(tmp / "build/bin/llama-server", staged / "llama-server")
        shutil.copy2(source / "LICENSE", staged / "LICENSE")
        (staged / "build.json").write_text(json.dumps(wanted, indent=1) + "\n")
        old = Path(f"{out}.old")
        shutil.rmtree(old, ignore_errors=True)
        if Path(out).exists():
            Path(out).rename(old)
        staged.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    print(f"llama-server: built into {out}")
