"""Preflight: one record of the host that later stages and the report read (once per host).

CPU, cores, RAM, free disk where results/ lives, GPUs (name, memory, compute capability, driver,
FP8 capability from compute capability) and a measured memory bandwidth: host RAM with a large
copy, device memory too when a GPU is present. The bandwidth is what the roofline divides by.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from .environment import environment
from .progress import progress
from .stats import summarize

FP8_MIN_COMPUTE_CAPABILITY = (8, 9)  # Ada (SM89), Hopper, Blackwell: TensorRT-LLM's support matrix
COPY_BYTES = 512 * 2**20  # large enough to defeat every CPU cache


def fp8_capable(compute_capability: list[int]) -> bool:
    return tuple(compute_capability) >= FP8_MIN_COMPUTE_CAPABILITY


def copy_bandwidth(copy, nbytes: int, repetitions: int) -> dict:
    """GB/s of a copy of `nbytes` (read + write: 2 × nbytes moved), one warm-up, then repetitions."""
    copy()
    rates = []
    for _ in range(repetitions):
        started = time.perf_counter()
        copy()
        rates.append(2 * nbytes / (time.perf_counter() - started) / 1e9)
    return summarize(rates, "GB/s")


def host_bandwidth(nbytes: int = COPY_BYTES, repetitions: int = 5) -> dict:
    import numpy as np

    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    return {**copy_bandwidth(lambda: np.copyto(dst, src), nbytes, repetitions),
            "method": f"numpy copy of {nbytes / 2**20:.0f} MiB, read + write counted"}


def device_bandwidth(nbytes: int = 4 * COPY_BYTES, repetitions: int = 10) -> dict | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    src = torch.ones(nbytes // 4, device="cuda")
    dst = torch.empty_like(src)

    def copy():
        dst.copy_(src)
        torch.cuda.synchronize()

    return {**copy_bandwidth(copy, nbytes, repetitions),
            "method": f"torch device-to-device copy of {nbytes / 2**20:.0f} MiB, read + write counted"}


def run_preflight(results: Path) -> dict:
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    env = environment()
    progress("measuring host memory bandwidth")
    host = host_bandwidth()
    progress("measuring device memory bandwidth" if env["gpus"] else "no GPU: no device bandwidth")
    device = device_bandwidth() if env["gpus"] else None
    disk = shutil.disk_usage(results)
    return {
        "stage": "preflight",
        "environment": env,
        "gpus": [{**g, "fp8": fp8_capable(g["compute_capability"])} for g in env["gpus"]],
        "disk": {"path": str(results), "free_bytes": disk.free, "total_bytes": disk.total},
        "bandwidth": {"host": host, "device": device},
    }
