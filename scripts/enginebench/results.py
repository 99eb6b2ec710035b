"""Result records: the layout of every result file, declared once, and the one way to write and read them.

Every stage writes its record through `write` and every reader (report, figures, gate, the quality
stage, the stages' upstream checks) reads it through `read`, which checks the file against its
declared layout: a file that does not match (an older enginebench's, a hand-edited one, another
stage's) is one error naming the file, the field and the rule that re-makes it, never a KeyError deep
in the renderer.

A record's `stage` names its layout; `record_version` its version (a file without one predates
versioned records and is read when its fields match). The fields declared here are the ones readers
rely on; a record may hold more. A run-history record's `stage` names the stage it times: it is read
as "history" (enginebench.history writes it, with its own never-overwrite rename).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EngineBenchError
from .io import read_json, write_json_atomic

VERSION = 1

# Statuses of a stage's record: ok, or why there is no figure (the report and the gate say which).
STATUSES = ("ok", "failed", "unavailable", "broken", "no_reference", "not_applicable")


@dataclass(frozen=True)
class Layout:
    """One kind of result file: what it is, which rule writes it, and the fields every record holds
    (`always`), a record of status ok holds (`ok`) and one of another status holds (`not_ok`)."""

    what: str
    rule: str
    always: dict[str, type | tuple[type, ...]]
    ok: dict[str, type | tuple[type, ...]] = field(default_factory=dict)
    not_ok: dict[str, type | tuple[type, ...]] = field(default_factory=lambda: {"reason": str})
    has_status: bool = True
    # False where the record's `stage` names the stage it times, not its layout (the run history)
    stage_names_layout: bool = True


_RUNTIME = {"spec": dict, "status": str}
_BUILD = {"backend": str, "settings": dict, "status": str}

LAYOUTS: dict[str, Layout] = {
    "preflight": Layout("host record", "preflight",
                        {"environment": dict, "disk": dict, "bandwidth": dict, "gpus": list}, has_status=False),
    "snapshot": Layout("snapshot manifest", "snapshot",
                       {"source": dict, "files": list, "total_bytes": int}, has_status=False),
    "calibration": Layout("calibration manifest", "trtllm_calibration", {"spec": dict, "status": str},
                          ok={"file": str, "samples": int}),
    "checkpoint": Layout("checkpoint manifest", "checkpoint", _BUILD),
    "engine": Layout("engine manifest", "engine", _BUILD),
    "bench": Layout("bench result", "bench", _RUNTIME,
                    ok={"metrics": dict, "environment": dict, "engine_info": dict, "threads": int}),
    "samples": Layout("samples result", "samples", _RUNTIME, ok={"samples": list}),
    "serve": Layout("serve result", "serve", _RUNTIME,
                    ok={"server": dict, "check": dict, "slo": dict, "steps": list, "best": (dict, type(None))}),
    "reference": Layout("reference record", "reference", _RUNTIME,
                        ok={"windows": list, "long_windows": list, "eval_text": str, "eval_text_sha256": str}),
    "quality": Layout("quality result", "quality", _RUNTIME, ok={"metrics": dict, "is_reference": bool}),
    "predicted_quality": Layout("predicted quality result", "predicted_quality", _RUNTIME,
                                ok={"metrics": dict, "predicted_by": str, "samples": list}),
    "gate": Layout("quality gate summary", "gate", {"thresholds": dict, "engines": list, "failed": list},
                   has_status=False),
    # one build or bench run (enginebench.history); `conditions` is missing from the oldest records
    "history": Layout("run-history record", "the stage it times", {"time": str, "stage": str, "name": str,
                                                                  "figures": dict},
                      has_status=False, stage_names_layout=False),
}


class RecordError(EngineBenchError):
    """A result file that does not match its declared layout."""


def _type_name(kinds: tuple[type, ...]) -> str:
    return " or ".join({"dict": "an object", "list": "a list", "str": "a string", "int": "an integer",
                        "float": "a number", "bool": "true or false"}[k.__name__] for k in kinds)


def problem(record: Any, stage: str) -> str | None:
    """What in `record` does not match the layout of `stage`'s records, or None."""
    layout = LAYOUTS[stage]
    if not isinstance(record, dict):
        return f"is not a JSON object (a {type(record).__name__})"
    if layout.stage_names_layout and record.get("stage") != stage:
        return f"is a {record.get('stage')!r} record, not a {stage!r} one (field 'stage')"
    version = record.get("record_version", VERSION)
    if not isinstance(version, int) or version > VERSION:
        return f"has record_version {version!r}; this enginebench reads versions up to {VERSION}"
    fields = dict(layout.always)
    if layout.has_status:
        status = record.get("status")
        if status not in STATUSES:
            return f"has field 'status' = {status!r}, not one of {', '.join(STATUSES)}"
        fields.update(layout.ok if status == "ok" else layout.not_ok)
    else:
        fields.update(layout.ok)
    for name, kind in fields.items():
        if name not in record:
            return f"has no field {name!r}"
        value = record[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):  # True is an int
            return f"has field {name!r} = {str(value)[:40]!r}, which is not {_type_name(kinds)}"
    return None


def _migrated(record: Any, stage: str | None) -> Any:
    """A record written before record versions, in the layout it should have had. One known defect:
    TensorRT-LLM's samples job ran the bench CLI, so an unbuilt engine's samples record said
    stage "bench" (rules/trtllm.smk before record version 1); its other fields are a samples record's."""
    if (stage == "samples" and isinstance(record, dict) and "record_version" not in record
            and record.get("stage") == "bench" and record.get("status") not in (None, "ok")):
        return {**record, "stage": "samples"}
    return record


def _error(path: Path, stage: str | None, what: str) -> RecordError:
    if stage is None:
        return RecordError(f"{path}: this result file {what}: it is not one enginebench writes")
    layout = LAYOUTS[stage]
    fix = (f"re-make it (snakemake --forcerun {layout.rule} …)" if layout.stage_names_layout
           else "move it out of the folder (a run-history record is never re-made)")
    return RecordError(f"{path}: this {layout.what} {what}: it was written by another enginebench version or "
                       f"edited by hand; {fix}")


def read(path: Path, stage: str | None = None) -> dict:
    """The record at `path`, checked against `stage`'s layout, or its own stage's where `stage` is None
    (a reader of any upstream artifact); a RecordError names what does not match."""
    path = Path(path)
    try:
        record = read_json(path)
    except FileNotFoundError:
        what = f"no {LAYOUTS[stage].what} there (rule {LAYOUTS[stage].rule} writes it)" if stage else "no such file"
        raise RecordError(f"{path}: {what}") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise _error(path, stage, f"is not JSON ({error})") from error
    record = _migrated(record, stage)
    if stage is None:
        stage = record.get("stage") if isinstance(record, dict) else None
        if stage not in LAYOUTS:
            raise _error(path, None, f"names no stage enginebench knows (field 'stage' is {stage!r})")
    if (what := problem(record, stage)) is not None:
        raise _error(path, stage, what)
    return record


def write(path: Path, record: dict) -> None:
    """Stamp `record` with the record version and write it atomically, after checking it against its
    stage's layout: a stage never writes a record its readers would refuse."""
    record = {**record, "record_version": VERSION}
    stage = record.get("stage")
    what = problem(record, stage) if stage in LAYOUTS else f"names no known stage ({stage!r})"
    if what is not None:
        raise RecordError(f"{path}: refusing to write a record that {what}")
    write_json_atomic(path, record)
