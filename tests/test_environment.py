from enginebench.environment import environment, parse_nvidia_smi

# Recorded from `nvidia-smi --query-gpu=name,memory.total,compute_cap,driver_version
# --format=csv,noheader,nounits` on an H100 host and an RTX 6000 Ada host.
H100 = "NVIDIA H100 80GB HBM3, 81559, 9.0, 570.133.20\n"
TWO_GPUS = "NVIDIA RTX 6000 Ada Generation, 49140, 8.9, 550.54.15\nTesla T4, 15360, 7.5, 550.54.15\n"


def test_parse_nvidia_smi_single():
    (gpu,) = parse_nvidia_smi(H100)
    assert gpu == {"name": "NVIDIA H100 80GB HBM3", "memory_bytes": 81559 * 2**20,
                   "compute_capability": [9, 0], "driver": "570.133.20"}


def test_parse_nvidia_smi_several_and_garbage():
    gpus = parse_nvidia_smi(TWO_GPUS + "No devices were found\n")
    assert [g["compute_capability"] for g in gpus] == [[8, 9], [7, 5]]


def test_environment_record_has_the_fields_the_report_shows():
    env = environment()
    for key in ("host", "os", "python", "cpu", "cpu_cores", "ram_bytes", "gpus", "libraries",
                "enginebench_commit"):
        assert key in env
    assert env["cpu_cores"] >= 1
    assert "torch" in env["libraries"]


def test_the_commit_comes_from_git_or_else_from_what_the_sender_named(tmp_path, monkeypatch):
    """A lent GPU machine's copy of the checkout has no .git (scripts/gpu_session.sh leaves it out): the
    records name ENGINEBENCH_COMMIT's commit there, and nothing where neither is known."""
    from enginebench import environment

    monkeypatch.setenv("ENGINEBENCH_COMMIT", "fa09f83")
    assert environment.git_commit() not in (None, "fa09f83")  # this checkout's own HEAD comes first
    monkeypatch.setattr(environment, "REPO", tmp_path)  # not a git checkout
    assert environment.git_commit() == "fa09f83"
    monkeypatch.delenv("ENGINEBENCH_COMMIT")
    assert environment.git_commit() is None
