"""An environment record for every result: host, CPU, memory, GPU, OS, library versions, git commit."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from .scheduler import job_record

REPO = Path(__file__).resolve().parents[2]
LIBRARIES = ("torch", "transformers", "tokenizers", "snakemake", "pandas", "llama_cpp_python",
             "nvidia-modelopt", "tensorrt_llm")


def put_interpreter_first_on_path() -> None:
    """Put the folder of this interpreter (a venv's bin/, also when the venv is not activated) first
    on PATH, so that the jobs' `python` is the one Snakemake runs under and has the project's packages,
    not whatever `python` came first. `--sdm conda` still puts its environment first; Apptainer keeps
    the container's own PATH."""
    folder = Path(sys.executable).parent
    if (folder / "python").exists():
        os.environ["PATH"] = os.pathsep.join([str(folder), os.environ.get("PATH", "")])


def environment() -> dict:
    return {
        "host": platform.node(),
        "job": job_record(),  # node and SLURM job id: on a cluster, which node measured
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "ram_bytes": ram_bytes(),
        "gpus": gpus(),
        "libraries": library_versions(),
        "enginebench_commit": git_commit(),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ram_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def parse_nvidia_smi(text: str) -> list[dict]:
    """Parse `nvidia-smi --query-gpu=name,memory.total,compute_cap,driver_version --format=csv,noheader,nounits`."""
    found = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            continue
        name, memory_mib, compute_cap, driver = parts
        major, _, minor = compute_cap.partition(".")
        found.append({
            "name": name,
            "memory_bytes": int(float(memory_mib)) * 2**20,
            "compute_capability": [int(major), int(minor or 0)],
            "driver": driver,
        })
    return found


def gpus() -> list[dict]:
    """GPUs as nvidia-smi reports them; hardware checks use compute capability, never the name."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,compute_cap,driver_version",
             "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(out)


def library_versions() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str | None:
    """HEAD of the enginebench checkout, with '-dirty' when tracked files have local changes; in a copy
    without git (a lent GPU machine's), the commit its sender named in ENGINEBENCH_COMMIT, if any."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("ENGINEBENCH_COMMIT") or None
    return head + ("-dirty" if dirty else "")


def parse_gpu_processes(text: str, own_pid: int) -> list[dict]:
    """Parse `nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader,nounits`:
    the processes other than `own_pid` computing on a GPU."""
    found = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not parts[0].isdigit() or int(parts[0]) == own_pid:
            continue
        found.append({"pid": int(parts[0]), "name": parts[1],
                      "memory_bytes": int(parts[2]) * 2**20 if parts[2].isdigit() else None})
    return found


def gpu_processes() -> list[dict] | None:
    """Other processes computing on the GPUs now (nvidia-smi), or None where it cannot say."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,process_name,used_memory",
                              "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_gpu_processes(out, os.getpid())
