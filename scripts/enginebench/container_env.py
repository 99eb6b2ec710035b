"""Installing enginebench into another project's container without touching that project's packages.

The TensorRT-LLM container holds the exact libraries TensorRT-LLM 1.2.1 was built and tested with
(transformers 4.57.3, nvidia-modelopt 0.37, numpy < 2, setuptools < 80, ...). enginebench's own
requirements pin newer ones, so a plain `pip install -r envs/requirements.txt` replaces them. Here
every package already installed is pinned to its installed version (a constraints file taken from
the interpreter's own freeze at run time), pip installs only what is missing, and the freeze is
compared afterwards: a changed or removed package is an error, never a silent replacement.
Snakemake itself, whose caps the image need not meet, gets an environment of its own (snakemake_env).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .errors import EngineBenchError

# The 1.2.1 pins that matter most, shown before and after (tensorrt_llm-1.2.1's requirements)
WATCHED = ("torch", "transformers", "nvidia-modelopt", "numpy", "pandas", "setuptools", "tensorrt", "tensorrt-llm")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def freeze(python: str) -> dict[str, str]:
    """{canonical name: version} of every package of `python`. `pip list --format=freeze` is pip
    freeze with every line as name==version, also for packages installed from a URL or a local
    folder (as NGC images install their own), which a constraints file cannot take otherwise."""
    out = subprocess.run([python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
                         capture_output=True, text=True, check=True).stdout
    pins = {}
    for line in out.splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonical(name)] = version.strip()
    return pins


def constraints_text(pins: dict[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Packages of `before` that `after` replaced or lost, as 'name: old -> new'."""
    return [f"{name}: {version} -> {after.get(name, 'removed')}" for name, version in sorted(before.items())
            if after.get(name) != version]


def watched_lines(pins: dict[str, str]) -> list[str]:
    return [f"{name}=={pins[name]}" for name in WATCHED if name in pins]


def install(python: str, requirements: list[Path], constraints: Path,
            pip_args: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """pip-install `requirements` into `python` under a constraints file of its own freeze; raise if
    any package it had changed. Returns the freezes before and after."""
    before = freeze(python)
    constraints.write_text(constraints_text(before))
    cmd = [python, "-m", "pip", "install", "--disable-pip-version-check", *pip_args, "-c", str(constraints)]
    for requirement in requirements:
        cmd += ["-r", str(requirement)]
    done = subprocess.run(cmd)
    if done.returncode != 0:
        raise EngineBenchError(f"pip could not install {', '.join(map(str, requirements))} without replacing "
                               f"a package the container holds (constraints: {constraints}); see pip's message above")
    after = freeze(python)
    if lost := changed(before, after):
        raise EngineBenchError("the install changed packages of the container: " + "; ".join(lost))
    return before, after


def site_paths(python: str) -> list[str]:
    """Where `python` finds its installed packages (site-packages, dist-packages)."""
    code = ("import site, sysconfig; paths = site.getsitepackages() + [sysconfig.get_paths()[k] for k in "
            "('purelib', 'platlib')]; print('\\n'.join(dict.fromkeys(paths)))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


def snakemake_env(python: str, env: Path, requirements: list[Path], pip_args: tuple[str, ...] = ()) -> dict:
    """Give Snakemake an environment of its own beside the container's Python: a venv at `env` made by
    `python` without pip (an image may lack ensurepip) and filled by `python`'s pip (`--python`), with
    Snakemake's exact requirements, conflicting with nothing: snakemake 9.27.1 caps packaging < 26,
    pulp < 3.4, docutils < 0.23, tenacity < 10 and sqlmodel < 0.0.38, and the image's own versions never
    have to meet those caps. Then a .pth file puts the image's packages behind the venv's own, so the
    Snakefile's parse sees what the jobs will (which backends are installed) while Snakemake's own
    dependencies shadow the image's in that one process. The jobs run `python` from PATH: the image's,
    untouched (its freeze is compared before and after). Returns {"snakemake": version, "python": path}."""
    env = Path(env)
    before = freeze(python)
    env_python = env / "bin" / "python"
    if not env_python.exists():
        subprocess.run([python, "-m", "venv", "--without-pip", str(env)], check=True)
    own_site = Path(subprocess.run([str(env_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())  # where pip installs
    image_pth = own_site / "_container_packages.pth"
    image_pth.unlink(missing_ok=True)  # pip below sees the venv alone
    cmd = [python, "-m", "pip", "--python", str(env_python), "install", "--disable-pip-version-check", *pip_args]
    for requirement in requirements:
        cmd += ["-r", str(requirement)]
    if subprocess.run(cmd).returncode != 0:
        raise EngineBenchError(f"pip could not install {', '.join(map(str, requirements))} into Snakemake's "
                               f"environment {env}; see pip's message above")
    image_pth.write_text("".join(f"{path}\n" for path in site_paths(python)))
    if lost := changed(before, freeze(python)):
        raise EngineBenchError("making Snakemake's environment changed packages of the container: " + "; ".join(lost))
    version = subprocess.run([str(env_python), "-c", "import snakemake; print(snakemake.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    return {"snakemake": version, "python": str(env_python)}
