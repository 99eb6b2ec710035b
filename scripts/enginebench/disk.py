"""Disk space: what a checkpoint or engine will take, estimated before it is built from the
snapshot's parameter count and the format's bytes per parameter, against the free space.

Estimates only (embeddings kept at higher precision, scales, metadata and llama.cpp's mixed
K-quant layouts make real files differ by some percent); the build stages refuse to start when the
estimate, with headroom, does not fit, and the report compares the sum with the preflight's free disk.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
from pathlib import Path

from .errors import EngineBenchError

HEADROOM = 1.2  # an artifact's temp folder plus the estimate's error


def parameter_count(snapshot: Path) -> int:
    """Parameters in the snapshot's safetensors files, read from their headers (no tensor is loaded)."""
    total = 0
    for path in sorted(Path(snapshot).glob("*.safetensors")):
        with path.open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        total += sum(math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__")
    return total


def _existing(path: Path) -> Path:
    path = Path(path).resolve()
    while not path.exists():
        path = path.parent
    return path


def _size(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.1f} MB"


def check_free(out: Path, need_bytes: float, what: str) -> dict:
    """{"estimated_bytes", "free_bytes"} where `out` will be written; a clear error if it cannot fit."""
    where = _existing(Path(out).parent)
    free = shutil.disk_usage(where).free
    if need_bytes * HEADROOM > free:
        raise EngineBenchError(f"disk: {what} needs about {_size(need_bytes)} (+{HEADROOM - 1:.0%} headroom), "
                               f"only {_size(free)} free under {where}")
    return {"estimated_bytes": need_bytes, "free_bytes": free}


def configured_need(variants: list[dict], parameters: int) -> float:
    """Estimated bytes of every checkpoint (each shared one once) and engine of a model's variants
    (engine specs: backend, settings, checkpoint slug)."""
    from .backends import get_backend

    checkpoints, engines = {}, 0.0
    for spec in variants:
        backend = get_backend(spec["backend"])
        checkpoints[spec["checkpoint"]] = backend.artifact_bytes("checkpoint", spec["settings"], parameters)
        engines += backend.artifact_bytes("engine", spec["settings"], parameters)
    return sum(checkpoints.values()) + engines
