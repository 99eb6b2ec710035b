"""The workflow on a real SLURM cluster through profiles/slurm, and what SLURM says about its jobs.

CI starts a single-node cluster on its own machine (.ci/slurm-cluster.sh) and sets ENGINEBENCH_SLURM=1,
which makes these tests fail rather than skip when no cluster answers.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from snakemake_run import REPO, SNAKEMAKE

PROFILE = REPO / "profiles" / "slurm"
REQUIRED = os.environ.get("ENGINEBENCH_SLURM") == "1"
# `Job 3 has been submitted with SLURM jobid 17 (log: ...).` (snakemake-executor-plugin-slurm 2.8)
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) ")
# The first line of a job's log under SLURM (enginebench.cli.run_cli).
LOG_HEAD = re.compile(r"^enginebench: \S+ on (\S+) \(SLURM job (\d+)\)$")


@dataclass(frozen=True)
class Cluster:
    node: str
    cpus: int
    mem_mb: int


@functools.cache
def cluster_problem() -> str | None:
    """Why no SLURM cluster can run the workflow from here, or None."""
    for tool in ("sinfo", "squeue", "sbatch", "scontrol", "scancel"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (envs/slurm.txt, make setup)"
    try:
        done = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo timed out"
    if done.returncode != 0:
        return f"sinfo failed: {done.stderr.strip()}"
    if not {"idle", "mixed", "allocated"} & set(done.stdout.split()):
        return f"no node is up (sinfo: {' '.join(done.stdout.split()) or 'no nodes'})"
    return None


def cluster_or_skip() -> Cluster:
    if (problem := cluster_problem()) is not None:
        if REQUIRED:
            pytest.fail(f"ENGINEBENCH_SLURM=1, but no SLURM cluster is reachable: {problem}")
        pytest.skip(f"no SLURM cluster reachable ({problem}); .ci/run starts one and sets ENGINEBENCH_SLURM=1")
    # The smallest node up: every job must fit on it.
    rows = subprocess.run(["sinfo", "-h", "-N", "-t", "idle,mixed,allocated", "-o", "%N %c %m"],
                          capture_output=True, text=True, check=True).stdout.split("\n")
    nodes = sorted((int(cpus), int(mem), name) for name, cpus, mem in (r.split() for r in rows if r.strip()))
    cpus, mem_mb, node = nodes[0]
    return Cluster(node=node, cpus=cpus, mem_mb=mem_mb)


def profile_command(workdir: Path, config: Path, *targets: str) -> list[str]:
    # The profile's first status check waits 40 s (the plugin's default, kind to a busy slurmctld); a
    # one-node test cluster answers at once, so poll from the first second.
    return [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--profile", str(PROFILE),
            "--slurm-init-seconds-before-status-checks", "1", "--slurm-keep-successful-logs",
            *targets, "--configfile", str(config)]


def measuring_cpus(cluster: Cluster) -> int:
    """CPUs of a measuring job here: a quarter of a node, so that several of the tiny model's run at once."""
    return max(1, cluster.cpus // 4)


def profile_env(cluster: Cluster, jobs_per_node: int = 8) -> dict:
    """The profile's settings for this cluster; `jobs_per_node` jobs fit in a node's memory at once."""
    return {**os.environ, "ENGINEBENCH_SLURM_CPUS": str(measuring_cpus(cluster)),
            "ENGINEBENCH_SLURM_MEM_MB": str(cluster.mem_mb // jobs_per_node)}


def start_on_slurm(workdir: Path, config: Path, cluster: Cluster, *targets: str) -> subprocess.Popen:
    return subprocess.Popen(profile_command(workdir, config, *targets), env=profile_env(cluster),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def submitted_jobs(output: str) -> dict[str, str]:
    """SLURM job id -> Snakemake job id, for every job the run submitted."""
    return {slurm: job for job, slurm in SUBMITTED.findall(output)}


def slurm_job(job_id: str) -> dict[str, str]:
    """`scontrol show job` as key -> value (the cluster keeps finished jobs for MinJobAge)."""
    text = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True,
                          check=True).stdout
    fields = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    return fields


def log_heads(workdir: Path) -> dict[Path, tuple[str, str]]:
    """Every job log under results/logs: (node, SLURM job id) from its head (None if absent). The head is
    the log's first line, or its second where a TensorRT-LLM job first echoes what it runs in."""
    heads = {}
    for log in sorted((workdir / "results" / "logs").rglob("*.log")):
        matches = (LOG_HEAD.match(line) for line in log.read_text().splitlines()[:2])
        match = next((m for m in matches if m), None)
        heads[log.relative_to(workdir)] = match.groups() if match else None
    return heads


def running_job(comment: str) -> str | None:
    """The id of this user's RUNNING job whose comment (the plugin's rule_<rule>_wildcards_<...>) matches."""
    rows = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"], capture_output=True, text=True).stdout
    return next((job for job, note in (r.split(maxsplit=1) for r in rows.splitlines() if r.strip())
                 if note == comment), None)
