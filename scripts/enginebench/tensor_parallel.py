"""A tensor-parallel torch engine (issue 25): the variant's `parallel.gpus` processes started by torchrun,
each loading its shard through transformers' tensor-parallel plan (TorchBackend.load with tp_plan="auto":
NCCL between GPUs, gloo between CPU processes) and running the same TorchEngine.generate; rank 0 writes
the answers. The pipeline's runtime stages do not run it yet (enginebench.stages.parallel_problem says so
in their records); `tests/test_parallel.py` checks it against one process, token for token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .errors import EngineBenchError
from .io import write_json_atomic

CLI = Path(__file__).resolve().parents[1] / "tensor_parallel.py"


def generate(snapshot: Path, settings: dict, prompts: list[list[int]], max_new_tokens: int, stop_ids: list[int],
             out: Path) -> None:
    """One rank's part: load the shard, answer each prompt alone, greedily; rank 0 writes {"world_size",
    "outputs"} to `out`."""
    import torch.distributed as dist

    from .backends.torch_backend import TorchBackend

    engine = TorchBackend().load(snapshot, None, None, settings, threads=1, trust_remote_code=False)
    outputs = [engine.generate([ids], max_new_tokens, stop_ids, fixed_length=False)[0] for ids in prompts]
    if dist.get_rank() == 0:  # with each rank's share of the weights: proof that they were split
        write_json_atomic(out, {"world_size": dist.get_world_size(), "device": str(engine.device),
                                "outputs": outputs, **parameter_counts(engine.model)})
    dist.barrier()
    dist.destroy_process_group()


def parameter_counts(model) -> dict:
    """The model's parameters, and those this rank holds (a DTensor's local shard)."""
    from torch.distributed.tensor import DTensor

    params = list(model.parameters())
    return {"parameters": sum(p.numel() for p in params),
            "parameters_on_rank_0": sum((p.to_local() if isinstance(p, DTensor) else p).numel() for p in params)}


def command(ranks: int, snapshot: Path, settings: dict, request: Path, out: Path) -> list[str]:
    """torchrun on this host: `ranks` processes of the CLI (scripts/tensor_parallel.py)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", str(CLI),
            "--snapshot", str(snapshot), "--settings", json.dumps(settings), "--request", str(request),
            "--out", str(out)]


def run(snapshot: Path, settings: dict, prompts: list[list[int]], max_new_tokens: int, stop_ids: list[int],
        work: Path, timeout_s: float = 600) -> dict:
    """The engine's answers from settings["parallel"]["gpus"] processes (rank 0's record)."""
    ranks = settings["parallel"]["gpus"]
    request, out = work / "request.json", work / "answers.json"
    request.write_text(json.dumps({"prompts": prompts, "max_new_tokens": max_new_tokens, "stop_ids": stop_ids}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
           "NVSHMEM_DISABLE_NVLS": "1"}  # NVLink multicast off (the lent machines' KINDS.md)
    done = subprocess.run(command(ranks, snapshot, settings, request, out), env=env, timeout=timeout_s,
                          capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise EngineBenchError(f"tensor-parallel run over {ranks} processes exited with status "
                               f"{done.returncode}:\n{tail}")
    return json.loads(out.read_text())
