"""Installing enginebench into another project's container without touching that project's packages.

The TensorRT-LLM container holds the exact libraries TensorRT-LLM 1.2.1 was built and tested with
(transformers 4.57.3, nvidia-modelopt 0.37, numpy < 2, setuptools < 80, ...). enginebench's own
requirements pin newer ones, so a plain `pip install -r envs/requirements.txt` replaces them. Here
every package already installed is pinned to its installed version (a constraints file taken from
the interpreter's own freeze at run time), pip installs only what is missing, and the freeze is
compared afterwards: a changed or removed package is an error, never a silent replacement.
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
