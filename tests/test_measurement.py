"""Preflight, roofline arithmetic and the run history, on known inputs."""

import json
import os

import pytest

from enginebench import history
from enginebench.environment import parse_nvidia_smi
from enginebench.preflight import fp8_capable, host_bandwidth, run_preflight
from enginebench.roofline import decode_bound, kv_bytes_per_token

# `nvidia-smi --query-gpu=name,memory.total,compute_cap,driver_version --format=csv,noheader,nounits`
RECORDED = """NVIDIA H100 80GB HBM3, 81559, 9.0, 570.86.15
NVIDIA RTX 6000 Ada Generation, 49140, 8.9, 570.86.15
NVIDIA A100-SXM4-80GB, 81920, 8.0, 570.86.15
"""


def test_fp8_capability_comes_from_compute_capability_not_the_name():
    gpus = parse_nvidia_smi(RECORDED)
    assert [(g["name"].split()[1], fp8_capable(g["compute_capability"])) for g in gpus] == [
        ("H100", True), ("RTX", True), ("A100-SXM4-80GB", False)]
    assert gpus[0]["memory_bytes"] == 81559 * 2**20


def test_preflight_records_the_host_and_a_measured_bandwidth(tmp_path):
    record = run_preflight(tmp_path / "results")
    host = record["bandwidth"]["host"]
    assert host["unit"] == "GB/s" and host["n"] == 5 and host["min"] > 0.1
    assert record["bandwidth"]["device"] is None and record["gpus"] == []  # this CPU-only host
    assert record["disk"]["free_bytes"] > 0 and record["environment"]["cpu_cores"] >= 1


def test_bandwidth_counts_read_and_write(monkeypatch):
    from enginebench import preflight

    clock = iter([0.0, 0.5, 1.0, 2.0])  # two timed copies: 0.5 s and 1.0 s
    monkeypatch.setattr(preflight.time, "perf_counter", lambda: next(clock))
    copies = []
    rates = preflight.copy_bandwidth(lambda: copies.append(1), nbytes=10**9, repetitions=2)
    assert len(copies) == 3  # one warm-up, untimed
    assert rates["values"] == [4.0, 2.0] and rates["unit"] == "GB/s"  # 2 × 1 GB moved per copy
    monkeypatch.undo()
    assert host_bandwidth(nbytes=8 * 2**20, repetitions=3)["n"] == 3


def test_roofline_arithmetic():
    llama = {"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096}
    assert kv_bytes_per_token(llama, "f16") == 2 * 32 * 8 * 128 * 2  # K and V, 32 layers, 8 heads of 128
    assert kv_bytes_per_token(llama, "q8_0") == 2 * 32 * 8 * 128 * 34 / 32
    gemma = {"text_config": {"num_hidden_layers": 18, "num_attention_heads": 4, "num_key_value_heads": 1,
                             "head_dim": 256, "hidden_size": 640}}
    assert kv_bytes_per_token(gemma, "bfloat16") == 2 * 18 * 1 * 256 * 2
    assert kv_bytes_per_token(llama, "no-such-type") is None
    bound = decode_bound(bandwidth_gb_s=100.0, weight_bytes=1e9, kv_per_token=1e5, context=1000)
    assert bound == {"bytes_per_token": 1.1e9, "tokens_per_s": pytest.approx(100e9 / 1.1e9)}


def test_history_appends_and_never_rewrites(tmp_path):
    first = history.append(tmp_path, "bench", "q8", {"tokens_per_s_batched": 10.0})
    before = first.read_bytes()
    second = history.append(tmp_path, "bench", "q8", {"tokens_per_s_batched": 11.0})
    history.append(tmp_path, "bench", "q8-kv-q4", {"tokens_per_s_batched": 99.0})  # a name it prefixes
    assert first != second and first.read_bytes() == before
    assert [r["figures"]["tokens_per_s_batched"] for r in history.records(tmp_path, "bench", "q8")] == [10.0, 11.0]
    assert history.records(tmp_path, "engine", "q8") == []


def test_a_killed_write_leaves_no_record(tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill arrives mid-write

    monkeypatch.setattr(json, "dump", killed)
    with pytest.raises(KeyboardInterrupt):
        history.append(tmp_path, "bench", "q8", {"tokens_per_s_batched": 10.0})
    monkeypatch.undo()
    assert history.records(tmp_path, "bench", "q8") == []
    assert os.listdir(tmp_path / "history") == []


def test_an_existing_record_name_is_refused_not_replaced(tmp_path, monkeypatch):
    path = history.append(tmp_path, "bench", "q8", {"x": 1.0})
    monkeypatch.setattr(history.os, "link", lambda src, dst: (_ for _ in ()).throw(FileExistsError(dst)))
    with pytest.raises(FileExistsError):
        history.append(tmp_path, "bench", "q8", {"x": 2.0})
    assert json.loads(path.read_text())["figures"] == {"x": 1.0}
    assert len(list((tmp_path / "history").iterdir())) == 1  # no temporary file left behind


@pytest.mark.parametrize("values, expected", [([10.0, 10.2, 9.9], pytest.approx(0.03)), ([5.0], None),
                                              ([100.0, 200.0], pytest.approx(100 / 150))])
def test_spread_across_runs(values, expected):
    assert history.spread(values) == expected
