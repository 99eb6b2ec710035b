"""Checkpoint and engine stages, written once against the backend interface.

A stage either builds its artifact or, when it cannot, writes a manifest that says why and nothing
else: `status` is "ok", "failed" (a deterministic refusal such as an unsupported architecture, or a
failed upstream stage) or "unavailable" (the backend cannot run on this host). Downstream stages
carry the reason on, so the report lists it instead of stopping at the first failure. Unexpected
errors (out of disk, killed, a bug) still fail the job and leave no output.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import results
from .backends import get_backend
from .disk import check_free, parameter_count
from .errors import StageFailure
from .history import append as append_history
from .history import fingerprint
from .io import atomic_dir, tree_bytes
from .paths import MANIFEST
from .progress import progress
from .scheduler import job_record


def upstream_problem(*artifacts: Path) -> dict | None:
    """{"status", "reason"} of the first upstream artifact (folder or result JSON) that is not ok."""
    for artifact in artifacts:
        artifact = Path(artifact)
        record = results.read(artifact / MANIFEST if artifact.is_dir() else artifact)
        status = record.get("status", "ok")
        if status != "ok":
            return {"status": status, "reason": f"{record.get('stage', artifact.name)}: {record['reason']}"}
    return None


def _run_stage(stage: str, spec: dict, snapshot: Path, out: Path, work, upstream: list[Path], planned) -> dict:
    backend = get_backend(spec["backend"])
    started = time.perf_counter()
    with atomic_dir(out) as tmp:
        # conditions: the spec's fingerprint, which the run history compares this build's time under
        manifest = {"stage": stage, **spec, "conditions": fingerprint(spec), "job": job_record()}
        problem = upstream_problem(*upstream)
        unavailable = backend.availability(stage, spec["settings"])
        if problem is None and unavailable is not None:
            problem = {"status": "unavailable", "reason": f"not built on this host: {unavailable}"}
        if problem is not None:
            manifest.update(problem)
            if problem["status"] == "unavailable":  # what would have run, for the report
                manifest["would_run"] = planned(backend)
        else:
            progress(f"{stage}: backend {backend.name}, settings {spec['settings']}")
            if need := backend.artifact_bytes(stage, spec["settings"], parameter_count(snapshot)):
                manifest["disk"] = check_free(out, need, f"the {stage} {Path(out).name}")
            manifest["versions"] = backend.versions()
            try:
                fields = work(backend, tmp)
            except StageFailure as failure:
                manifest.update(status="failed", reason=str(failure))
            else:
                manifest.update(status="ok", **fields)
                if manifest.get("work", True):
                    manifest.setdefault("timings", {})[f"{stage}_s"] = time.perf_counter() - started
                    manifest["artifact_bytes"] = tree_bytes(tmp)
        if manifest["status"] != "ok":
            progress(f"{stage}: {manifest['status']}: {manifest['reason']}")
        results.write(tmp / MANIFEST, manifest)
    if manifest["status"] == "ok" and manifest.get("work", True):  # a build that ran: keep its time
        # a TensorRT-LLM logits engine (Plan.logits_engine_spec) keeps its own series, apart from the timed one
        history_stage = "logits-engine" if spec.get("purpose") else stage
        append_history(Path(out).parent.parent, history_stage, Path(out).name,
               {f"{stage}_s": manifest["timings"][f"{stage}_s"], "artifact_bytes": manifest["artifact_bytes"]},
               manifest["conditions"])
    progress(f"{stage}: {manifest['status']} after {time.perf_counter() - started:.1f} s")
    return manifest


def build_checkpoint(spec: dict, snapshot: Path, out: Path) -> dict:
    return _run_stage("checkpoint", spec, Path(snapshot), out,
                      lambda backend, tmp: backend.convert(Path(snapshot), spec["settings"], tmp), [],
                      lambda backend: backend.planned("checkpoint", Path(snapshot), out, None, spec["settings"]))


def build_engine(spec: dict, snapshot: Path, checkpoint: Path, out: Path) -> dict:
    return _run_stage("engine", spec, Path(snapshot), out,
                      lambda backend, tmp: backend.build(Path(snapshot), Path(checkpoint), spec["settings"], tmp),
                      [Path(checkpoint)],
                      lambda backend: backend.planned("engine", Path(snapshot), Path(checkpoint), out,
                                                      spec["settings"]))


def load_engine(spec: dict, paths: dict, threads: int):
    """(backend, loaded engine), without the snapshot's tokenizer: for a run that is fed token ids only
    (the quality stage; the tokenizer and the transformers import it brings were ~6 s of a llama.cpp job)."""
    backend = get_backend(spec["backend"])
    engine = backend.load(paths["snapshot"], paths["checkpoint"], paths["engine"], spec["settings"],
                          threads=threads, trust_remote_code=spec["trust_remote_code"])
    return backend, engine


def open_engine(spec: dict, paths: dict, threads: int):
    """(backend, prompt encoder, loaded engine) for a bench, samples or reference run."""
    from .prompts import PromptEncoder

    # The engine first: a GPU llama.cpp engine keeps torch out of its process, which the tokenizer
    # would otherwise import (backends/llamacpp_backend.py, _isolate_gpu_build).
    backend, engine = load_engine(spec, paths, threads)
    encoder = PromptEncoder(paths["snapshot"], chat_template=spec["chat_template"],
                            trust_remote_code=spec["trust_remote_code"])
    return backend, encoder, engine


def skipped_result(stage: str, spec: dict, paths: dict) -> dict | None:
    """The result a runtime stage writes for an engine that was not built, or that this host cannot run
    across the GPUs it asks for, else None."""
    if "engine" not in paths:
        return None
    problem = upstream_problem(paths["engine"]) or parallel_problem(spec)
    return None if problem is None else {"stage": stage, "spec": spec, **problem}


def parallel_problem(spec: dict) -> dict | None:
    """Why an engine of parallel.gpus > 1 does not run here (the backend's parallel_problem: fewer GPUs on
    this host than it asks; on a host that has some, Plan.check_host refused the plan already)."""
    parallel = spec["settings"].get("parallel")
    if not parallel or parallel["gpus"] == 1:
        return None
    from .environment import gpus

    reason = get_backend(spec["backend"]).parallel_problem(parallel, len(gpus()))
    return None if reason is None else {"status": "unavailable", "reason": f"not run on this host: {reason}"}
