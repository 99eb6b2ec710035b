"""A tensor-parallel torch engine (issue 25): the variant's `parallel.gpus` processes started by torchrun,
each loading its shard through transformers' tensor-parallel plan (TorchBackend.load with tp_plan="auto":
NCCL between GPUs, gloo between CPU processes on a host without GPU) and running the same stage code; rank
0 writes the result. A runtime stage (bench, samples, quality) of such an engine starts itself again under
torchrun (`relaunch`, from enginebench.cli.runtime_main). `tests/test_parallel.py` runs it through the
pipeline on the CPU and checks its answers against one process, token for token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .backends.base import parallel_gpus
from .errors import EngineBenchError

SCRIPTS = Path(__file__).resolve().parents[1]
# NVLink multicast off in every rank (the lent machines' KINDS.md)
ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


def in_rank() -> bool:
    """Whether this process is one of torchrun's ranks."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


# The runtime stages that load the engine in their own process (serve starts a server instead)
RANKED_STAGES = ("bench", "samples", "quality")


def ranks_to_start(stage: str, spec: dict) -> int:
    """How many processes `stage` of this spec must be started as (0: run it here as it is)."""
    from .backends import get_backend

    ranks = parallel_gpus(spec["settings"])
    return ranks if (ranks > 1 and stage in RANKED_STAGES and get_backend(spec["backend"]).tensor_parallel
                     and not in_rank()) else 0


def relaunch(stage: str, ranks: int, argv: list[str]) -> int:
    """The stage's CLI (scripts/<stage>.py) again, as `ranks` torchrun processes on this host; rank 0
    writes its result. A rank that fails fails the job with one sentence (the ranks' output is in its log)."""
    from .progress import progress

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
           str(SCRIPTS / f"{stage}.py"), *argv]
    progress(f"{stage}: tensor parallel over {ranks} processes: {' '.join(cmd)}")
    done = subprocess.run(cmd, env={**os.environ, **ENV})
    if done.returncode != 0:
        raise EngineBenchError(f"{stage}: the tensor-parallel run over {ranks} processes exited with status "
                               f"{done.returncode} (each rank's output is above in this log)")
    return 0


def finish() -> None:
    """In a rank: wait for every rank (rank 0 samples the host load, counting the living ranks as its own,
    and writes), then leave the process group."""
    if not in_rank():
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def parameter_counts(model) -> dict:
    """The model's parameters, those this rank holds (a DTensor's local shard) and their bytes."""
    from torch.distributed.tensor import DTensor

    params = list(model.parameters())
    local = [p.to_local() if isinstance(p, DTensor) else p for p in params]
    return {"parameters": sum(p.numel() for p in params), "parameters_on_rank_0": sum(p.numel() for p in local),
            "weight_bytes_on_rank": sum(p.numel() * p.element_size() for p in local)}
