"""Preflight: one record of the host that later stages and the report read (once per host).

CPU, cores, RAM, free disk where results/ lives, GPUs (name, memory, compute capability, driver,
FP8 capability from compute capability) and a measured memory bandwidth, which the roofline divides
by: host RAM read the way a CPU engine reads its weights (every core the benches use, reading a buffer
far beyond the caches), device memory by a large copy where a GPU is present. A bound must not be
beaten, so the roofline takes the best of the repetitions. Other processes' share of the
CPU is sampled around the host measurement as around a bench: a busy host is measured again, up to
three times, and the record says whether the kept measurement was busy. The device measurement records
the other processes computing on the GPU (nvidia-smi). Where an engine of the config spans several GPUs, the
all-reduce bandwidth among that many (enginebench.interconnect).
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .environment import environment, gpu_processes
from .hostload import host_load, sample
from .progress import progress
from .stats import summarize

FP8_MIN_COMPUTE_CAPABILITY = (8, 9)  # Ada (SM89), Hopper, Blackwell: TensorRT-LLM's support matrix
COPY_BYTES = 512 * 2**20  # large enough to defeat every CPU cache
BUSY_ATTEMPTS, BUSY_PAUSE_S = 3, 5.0


def fp8_capable(compute_capability: list[int]) -> bool:
    return tuple(compute_capability) >= FP8_MIN_COMPUTE_CAPABILITY


def measured_rate(run, moved_bytes: int, repetitions: int) -> dict:
    """GB/s of `run`, which moves `moved_bytes`: one warm-up, then repetitions (the roofline divides by
    the best of them: roofline.bound_bandwidth)."""
    run()
    rates = []
    for _ in range(repetitions):
        started = time.perf_counter()
        run()
        rates.append(moved_bytes / (time.perf_counter() - started) / 1e9)
    return summarize(rates, "GB/s")


def copy_bandwidth(copy, nbytes: int, repetitions: int) -> dict:
    """GB/s of a copy of `nbytes` (read + write: 2 × nbytes moved)."""
    return measured_rate(copy, 2 * nbytes, repetitions)


def host_bandwidth(threads: int = 1, nbytes: int = COPY_BYTES, repetitions: int = 5) -> dict:
    """GB/s read from host RAM by `threads` threads, each reducing its share of one buffer (numpy lets
    go of the GIL inside a reduction), bytes read counted: how a CPU engine streams its weights."""
    import numpy as np

    parts = np.array_split(np.ones(nbytes // 8), threads)
    with ThreadPoolExecutor(threads) as pool:
        rates = measured_rate(lambda: list(pool.map(np.max, parts)), nbytes, repetitions)
    return {**rates, "threads": threads,
            "method": f"numpy max over {nbytes / 2**20:.0f} MiB in {threads} thread{'s' if threads > 1 else ''}, "
                      "bytes read counted"}


def idle_host_bandwidth(threads: int) -> dict:
    """host_bandwidth with the share of the CPU other processes used meanwhile (hostload, as the bench
    records it); measured again while that makes the host busy, at most BUSY_ATTEMPTS times."""
    attempt = 1
    while True:
        before = sample()
        measured = host_bandwidth(threads)
        load = host_load(before)
        if not load["busy"] or attempt == BUSY_ATTEMPTS:  # busy None: no /proc/stat to tell
            return {**measured, "host_load": load, "attempts": attempt}
        progress(f"other processes used {load['other_share']:.0%} of the CPU while the bandwidth was measured: "
                 f"again in {BUSY_PAUSE_S:g} s")
        time.sleep(BUSY_PAUSE_S)
        attempt += 1


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


def interconnect(ranks: int, gpus: int) -> dict | None:
    """The all-reduce bandwidth among the config's widest split (enginebench.interconnect): NCCL among as many
    of this host's GPUs, gloo among CPU processes on a host without GPU; None where no engine is split."""
    from .interconnect import all_reduce_bandwidth

    if ranks < 2:
        return None
    if gpus == 1:
        return {"reason": "one GPU here: nothing to all-reduce among"}
    ranks = min(ranks, gpus) if gpus else ranks
    progress(f"measuring the all-reduce bandwidth among {ranks} {'GPUs' if gpus else 'CPU processes'}")
    return all_reduce_bandwidth(ranks)


def run_preflight(results: Path, threads: int = 1, ranks: int = 1) -> dict:
    """The host record; `ranks`: the most GPUs one engine of the config spans (its interconnect is measured)."""
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    env = environment()
    progress(f"measuring host memory bandwidth ({threads} threads)")
    host = idle_host_bandwidth(threads)
    progress("measuring device memory bandwidth" if env["gpus"] else "no GPU: no device bandwidth")
    device = device_bandwidth() if env["gpus"] else None
    if device is not None:  # what else computed on the GPU just after: its bound may be low
        device["gpu_processes"] = gpu_processes()
    disk = shutil.disk_usage(results)
    return {
        "stage": "preflight",
        "environment": env,
        "gpus": [{**g, "fp8": fp8_capable(g["compute_capability"])} for g in env["gpus"]],
        "disk": {"path": str(results), "free_bytes": disk.free, "total_bytes": disk.total},
        "bandwidth": {"host": host, "device": device},
        "interconnect": interconnect(ranks, len(env["gpus"])),
    }
