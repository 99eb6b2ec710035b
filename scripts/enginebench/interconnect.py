"""The interconnect the ranks of a split engine talk over (issue 25): an all-reduce among as many ranks as the
config's widest split, timed as nccl-tests reports it: bus bandwidth = bytes ÷ time × 2(N−1)/N, the traffic
each rank sends and receives in a ring, comparable across rank counts. NCCL between GPUs (one rank per GPU);
on a host without GPU, gloo between CPU processes, which is what a torch split's ranks use there. The
preflight starts it as N torchrun processes (`all_reduce_bandwidth`); rank 0 writes the figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .stats import summarize
from .tensor_parallel import ENV, SCRIPTS, rank, world_size

GPU_BYTES, CPU_BYTES = 256 * 2**20, 32 * 2**20  # nccl-tests' large messages; gloo on 2 cores is far slower
GPU_REPETITIONS, CPU_REPETITIONS = 10, 3
TIMEOUT_S = 600


def measure(nbytes: int, repetitions: int) -> dict:
    """In a rank: bus bandwidth of an all-reduce of `nbytes` float32, one warm-up, then `repetitions`."""
    import torch
    import torch.distributed as dist

    on_gpu = torch.cuda.is_available()
    if on_gpu:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if on_gpu else "gloo")
    try:
        data = torch.ones(nbytes // 4, device="cuda" if on_gpu else "cpu")
        ranks = dist.get_world_size()

        def all_reduce() -> float:
            dist.barrier()
            started = time.perf_counter()
            dist.all_reduce(data)
            if on_gpu:
                torch.cuda.synchronize()
            return time.perf_counter() - started

        all_reduce()
        seconds = [all_reduce() for _ in range(repetitions)]
        # the slowest rank's time is the collective's
        times = torch.tensor(seconds, device=data.device, dtype=torch.float64)
        dist.all_reduce(times, op=dist.ReduceOp.MAX)
        rates = [nbytes / s / 1e9 * 2 * (ranks - 1) / ranks for s in times.tolist()]
        return {**summarize(rates, "GB/s"), "ranks": ranks, "collectives": dist.get_backend(),
                "method": f"all-reduce of {nbytes / 2**20:.0f} MiB among {ranks} "
                          f"{'GPUs' if on_gpu else 'CPU processes'} ({dist.get_backend()}), bus bandwidth "
                          "(bytes ÷ time × 2(N−1)/N, as nccl-tests reports it), the slowest rank's time"}
    finally:
        dist.destroy_process_group()


def all_reduce_bandwidth(ranks: int) -> dict:
    """Start `ranks` torchrun processes that measure the all-reduce (NCCL where torch sees GPUs, else gloo);
    its figure, or {"reason": why not} where the run failed (its output is in the preflight's log)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "interconnect.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
               "-m", "enginebench.interconnect", str(out)]
        env = {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join(filter(None, [str(SCRIPTS),
                                                                                os.environ.get("PYTHONPATH")]))}
        try:
            done = subprocess.run(cmd, env=env, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return {"reason": f"the all-reduce among {ranks} ranks did not finish in {TIMEOUT_S} s"}
        if done.returncode != 0 or not out.exists():
            return {"reason": f"the all-reduce among {ranks} ranks exited with status {done.returncode} "
                              "(its output is above in the preflight's log)"}
        return json.loads(out.read_text())


def main(argv: list[str]) -> int:
    import torch

    out = Path(argv[0])
    measured = measure(*((GPU_BYTES, GPU_REPETITIONS) if torch.cuda.is_available() else (CPU_BYTES, CPU_REPETITIONS)))
    if rank() == 0:
        out.write_text(json.dumps(measured))
    print(f"rank {rank()} of {world_size()}: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
