"""Where a job ran: the node's name and, under SLURM, the job's id.

On a cluster the submit host plans and the jobs run on nodes: the host record, a bench and the
roofline that divides one by the other may come from different machines. Every result records its
node and job, so the report can say which node measured what.
"""

from __future__ import annotations

import os
import platform


def job_record() -> dict:
    """{"node", "slurm_job_id"} of this process (slurm_job_id None outside a SLURM job)."""
    return {"node": os.environ.get("SLURMD_NODENAME") or platform.node(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID")}


def job_text(record: dict) -> str:
    """'node-7 (SLURM job 1234)', or the bare node name outside SLURM."""
    job = record["slurm_job_id"]
    return f"{record['node']} (SLURM job {job})" if job else record["node"]


def node_text(env: dict) -> str:
    """The node (and job) of an environment record; its host name for records older than `job`."""
    return job_text(env["job"]) if env.get("job") else env["host"]


def hardware(env: dict) -> tuple:
    """What a memory-bandwidth figure depends on: CPU model and cores, RAM, GPU models."""
    return env["cpu"], env["cpu_cores"], env["ram_bytes"], tuple(g["name"] for g in env["gpus"])


def bandwidth_source(bench_env: dict, preflight_env: dict) -> tuple[bool, str | None]:
    """(usable, note) for a roofline that divides the preflight's bandwidth into a bench's bytes per
    token: usable where both ran on the same node or on nodes of the same hardware (the note then
    names the preflight's node), not where the hardware differs."""
    bench_node, host_node = (env["job"]["node"] if env.get("job") else env["host"]
                             for env in (bench_env, preflight_env))
    if bench_node == host_node:
        return True, None
    if hardware(bench_env) == hardware(preflight_env):
        return True, f"bandwidth measured on {host_node}, same hardware"
    return False, f"the bench ran on {bench_node}, the bandwidth was measured on {host_node} (other hardware)"
