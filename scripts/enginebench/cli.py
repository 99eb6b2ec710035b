"""Shared plumbing for the thin CLIs in scripts/."""

from __future__ import annotations

import argparse
import errno
import faulthandler
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from . import results, tensor_parallel
from .errors import EngineBenchError
from .scheduler import job_record, job_text


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run a CLI body; an EngineBenchError becomes one line on stderr and exit status 2. Under SLURM
    the job's log starts with the node and job id that ran it (a local run's logs do not change).
    A crash in native code (llama.cpp, CUDA) prints the Python stack it happened under to the log."""
    if not faulthandler.is_enabled():
        faulthandler.enable(file=sys.__stderr__)
    if (job := job_record())["slurm_job_id"]:
        print(f"enginebench: {Path(sys.argv[0]).name} on {job_text(job)}", file=sys.stderr, flush=True)
    try:
        return main(argv) or 0
    except EngineBenchError as error:
        print(f"enginebench: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a full disk, wherever it struck (safetensors' Rust says "os error 28")
        if not disk_full(error):
            raise
        print(f"enginebench: error: {disk_full_text(error, sys.argv if argv is None else argv)}", file=sys.stderr)
        return 2


def disk_full(error: BaseException) -> bool:
    """Whether `error` (or one it was raised from) is the disk running out of space."""
    while error is not None:
        if getattr(error, "errno", None) == errno.ENOSPC or any(
                text in str(error) for text in ("No space left on device", "os error 28")):
            return True
        error = error.__cause__ or error.__context__
    return False


def disk_full_text(error: BaseException, argv: list[str]) -> str:
    """One sentence: the disk is full, where the stage was writing, how much is free there now."""
    script = Path(sys.argv[0]).stem
    out = next((argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--out"), None)
    where = Path(getattr(error, "filename", None) or out or ".")
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    return (f"disk full: {script} ran out of space writing {out or where} ({free / 1e9:.2f} GB free under {where} "
            "now); nothing partial is kept: free some space and run it again")


def parse_spec(text: str) -> dict:
    """Parse the JSON spec a rule passes through `params:`; a containerized job's `invocation` (rules/common.smk
    container_spec) is printed, to the job's log, not passed on."""
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        raise EngineBenchError(f"--spec is not valid JSON: {error}") from error
    if not isinstance(spec, dict):
        raise EngineBenchError("--spec must be a JSON object")
    if invocation := spec.pop("invocation", None):  # a containerized job's: what it runs, and where
        print(invocation, flush=True)
    return spec


def runtime_main(stage: str, description: str, run, argv: list[str] | None, inputs: tuple[str, ...] = (),
                 artifacts: tuple[str, ...] = ("snapshot", "checkpoint", "engine"), record=None) -> int:
    """The CLI body shared by the stages that load an engine (bench, samples, reference, quality):
    parse, run, write. `artifacts` are the folders it loads from (an engine that was not built makes
    the result say so instead); `inputs` name further result files it reads (--reference etc.);
    `record(result, out)` runs once the result is written (the run history)."""
    from .stages import skipped_result  # the runtime stages' CLIs only: the others need not import it

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--spec", required=True, help="runtime spec JSON (Plan.runtime_spec)")
    for name in artifacts:
        parser.add_argument(f"--{name}", required=True, type=Path)
    for name in inputs:
        parser.add_argument(f"--{name.replace('_', '-')}", required=True, type=Path, help=f"{name} result file")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (the Snakemake job's)")
    parser.add_argument("--out", required=True, type=Path, help="result JSON to write")
    args = parser.parse_args(argv)
    paths = {name: getattr(args, name) for name in (*artifacts, *inputs)} | {"out": args.out}
    spec = parse_spec(args.spec)
    skipped = skipped_result(stage, spec, paths)
    if skipped is None and (ranks := tensor_parallel.ranks_to_start(stage, spec)):
        return tensor_parallel.relaunch(stage, ranks, sys.argv[1:] if argv is None else argv)
    threads = max(1, args.threads // tensor_parallel.world_size())  # a rank's share of the job's cores
    result = {**(skipped or run(spec, paths, threads)), "job": job_record()}
    if tensor_parallel.rank() == 0:  # one result per job, whatever the number of ranks
        results.write(args.out, result)
        if record is not None:
            record(result, args.out)
    tensor_parallel.finish()  # every rank alive until rank 0 has measured and written
    return 0
