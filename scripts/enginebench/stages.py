"""Checkpoint and engine stages, written once against the backend interface."""

from __future__ import annotations

import time
from pathlib import Path

from .backends import get_backend
from .cli import progress
from .errors import EngineBenchError
from .io import atomic_dir, tree_bytes, write_json_atomic
from .paths import MANIFEST


def _run_stage(stage: str, spec: dict, out: Path, work) -> dict:
    backend = get_backend(spec["backend"])
    reason = backend.availability()
    if reason is not None:
        raise EngineBenchError(f"{stage} for backend {backend.name!r} cannot run on this host: {reason}")
    started = time.perf_counter()
    with atomic_dir(out) as tmp:
        progress(f"{stage}: backend {backend.name}, settings {spec['settings']}")
        fields = work(backend, tmp)
        seconds = time.perf_counter() - started
        manifest = {"stage": stage, **spec, "versions": backend.versions(), **fields}
        if manifest.get("work", True):
            manifest.setdefault("timings", {})[f"{stage}_s"] = seconds
            manifest["artifact_bytes"] = tree_bytes(tmp)
        write_json_atomic(tmp / MANIFEST, manifest)
    progress(f"{stage}: done in {seconds:.1f} s")
    return manifest


def build_checkpoint(spec: dict, snapshot: Path, out: Path) -> dict:
    return _run_stage("checkpoint", spec, out,
                      lambda backend, tmp: backend.convert(Path(snapshot), spec["settings"], tmp))


def build_engine(spec: dict, snapshot: Path, checkpoint: Path, out: Path) -> dict:
    return _run_stage("engine", spec, out,
                      lambda backend, tmp: backend.build(Path(snapshot), Path(checkpoint),
                                                         spec["settings"], tmp))
