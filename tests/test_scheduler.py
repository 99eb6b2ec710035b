"""Which node and SLURM job a result came from, and when a roofline may divide across nodes."""

import platform

import pytest

from enginebench.environment import environment
from enginebench.scheduler import bandwidth_source, job_record, job_text, node_text


def test_job_record_outside_and_inside_slurm(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SLURMD_NODENAME", raising=False)
    assert job_record() == {"node": platform.node(), "slurm_job_id": None}
    assert job_text(job_record()) == platform.node()
    monkeypatch.setenv("SLURM_JOB_ID", "4711")
    monkeypatch.setenv("SLURMD_NODENAME", "gpu-node-3")
    assert environment()["job"] == {"node": "gpu-node-3", "slurm_job_id": "4711"}
    assert job_text(job_record()) == "gpu-node-3 (SLURM job 4711)"


def env_of(node: str, cpu: str = "EPYC 9654", gpus: tuple = ("NVIDIA H200",), job: bool = True) -> dict:
    return {"host": f"{node}.cluster", "cpu": cpu, "cpu_cores": 96, "ram_bytes": 2**40,
            "gpus": [{"name": g} for g in gpus], **({"job": {"node": node, "slurm_job_id": "1"}} if job else {})}


def test_node_text_falls_back_to_the_host_of_older_records():
    assert node_text(env_of("n1")) == "n1 (SLURM job 1)"
    assert node_text(env_of("n1", job=False)) == "n1.cluster"


@pytest.mark.parametrize("bench, preflight, usable, note", [
    (env_of("n1"), env_of("n1"), True, None),
    (env_of("n2"), env_of("n1"), True, "bandwidth measured on n1, same hardware"),
    (env_of("n2", gpus=("NVIDIA L40S",)), env_of("n1"), False,
     "the bench ran on n2, the bandwidth was measured on n1 (other hardware)"),
    (env_of("n2", cpu="Xeon 8480"), env_of("n1"), False,
     "the bench ran on n2, the bandwidth was measured on n1 (other hardware)"),
    (env_of("n1", job=False), env_of("n1", job=False), True, None),  # results from before `job`
])
def test_roofline_divides_only_by_a_bandwidth_of_the_same_hardware(bench, preflight, usable, note):
    assert bandwidth_source(bench, preflight) == (usable, note)


def test_report_computes_no_roofline_across_hardware():
    from enginebench.columns import roofline_cells

    bench = {"metrics": {}, "engine_info": {}, "environment": env_of("n2", gpus=("NVIDIA L40S",))}
    host = {"bandwidth": {"host": None, "device": None}, "environment": env_of("n1")}
    bound, share = roofline_cells({"bench": bench}, host)
    assert share == "—"
    assert bound == "not computed: the bench ran on n2, the bandwidth was measured on n1 (other hardware)"
