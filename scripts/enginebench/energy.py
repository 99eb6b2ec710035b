"""Energy counters: the joules a device has used, read before and after each timed run of the bench.

A GPU engine reads its GPU's own counter (NVML's total energy since the driver loaded, in mJ; Volta
and later), through the driver's libnvidia-ml by ctypes, so no Python package is needed; a CPU engine
reads the CPU packages' RAPL counters (Linux powercap), which count every process on those packages.
Where neither can be read the bench records why, and the report says "not measured" with that reason.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


def counter(device: str) -> tuple[Callable[[], float] | None, str]:
    """(read, what): a function returning the counter in joules and what it counts, or (None, why not),
    for an engine on `device` ("cuda", "cuda:N" or "cpu", as its engine_info reports it)."""
    if str(device).startswith("cuda"):
        return _nvml(int(device.partition(":")[2] or 0))
    return _rapl()


def _nvml(index: int) -> tuple[Callable[[], float] | None, str]:
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError as error:
        return None, f"the NVIDIA driver's libnvidia-ml could not be loaded ({error})"
    handle, name = ctypes.c_void_p(), ctypes.create_string_buffer(96)
    visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    which = visible[index] if index < len(visible) else str(index)  # CUDA's device N as NVML names it
    if not which.isdigit() and not which.startswith(("GPU-", "MIG-")):
        return None, f"CUDA_VISIBLE_DEVICES names GPU {which!r}, which NVML cannot look up"
    status = nvml.nvmlInit_v2() or (
        nvml.nvmlDeviceGetHandleByUUID(which.encode(), ctypes.byref(handle)) if which.startswith(("GPU-", "MIG-"))
        else nvml.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(int(which)), ctypes.byref(handle)))
    status = status or nvml.nvmlDeviceGetName(handle, name, ctypes.c_uint(len(name)))
    millijoules = ctypes.c_ulonglong()

    def read() -> float:
        if code := nvml.nvmlDeviceGetTotalEnergyConsumption(handle, ctypes.byref(millijoules)):
            raise OSError(f"NVML error {code} reading the energy counter")
        return millijoules.value / 1000

    if status:
        return None, f"NVML error {status} opening GPU {which}"
    try:
        read()
    except OSError as error:
        return None, f"{error} of GPU {which} (NVML reports energy from Volta on)"
    return read, f"GPU {which} ({name.value.decode()}) alone: NVML's total energy counter"


def _rapl() -> tuple[Callable[[], float] | None, str]:
    zones = sorted(POWERCAP.glob("intel-rapl:[0-9]")) if POWERCAP.is_dir() else []
    if not zones:
        return None, "no GPU, and no RAPL energy counter on this host (/sys/class/powercap has no CPU package zone)"
    try:
        ranges = [int((z / "max_energy_range_uj").read_text()) for z in zones]
        last = [int((z / "energy_uj").read_text()) for z in zones]
    except (OSError, ValueError) as error:
        return None, f"the CPU's RAPL energy counters are not readable here ({error})"
    total = [0.0]

    def read() -> float:  # microjoules, each zone wrapping at its range: accumulated between reads
        for i, zone in enumerate(zones):
            now = int((zone / "energy_uj").read_text())
            total[0] += (now - last[i]) % ranges[i] / 1e6
            last[i] = now
        return total[0]

    return read, (f"the CPU package{'s' if len(zones) > 1 else ''} ({len(zones)}) by RAPL: every process on them, "
                  "not this engine alone")
