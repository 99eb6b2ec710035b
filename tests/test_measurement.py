"""Preflight, roofline arithmetic, latency timing, the batch sweep and the run history, on known inputs."""

import json
import os

import pytest

from enginebench import bench, disk, history
from enginebench.environment import parse_nvidia_smi
from enginebench.errors import EngineBenchError
from enginebench.preflight import fp8_capable, host_bandwidth, run_preflight
from enginebench.roofline import decode_bound, decode_context, kv_bytes_per_token

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
    assert kv_bytes_per_token(gemma, "bfloat16, static") == kv_bytes_per_token(gemma, "bfloat16")
    bound = decode_bound(bandwidth_gb_s=100.0, weight_bytes=1e9, kv_per_token=1e5, context=1000)
    assert bound == {"bytes_per_token": 1.1e9, "tokens_per_s": pytest.approx(100e9 / 1.1e9)}


def test_a_static_cache_is_read_whole_by_each_decode_step():
    bench = {"prompt_tokens": [6, 14], "spec": {"bench": {"max_new_tokens": 32}}, "engine_info": {}}
    assert decode_context(bench) == 10 + 16  # mean prompt + half the generated tokens
    bench["engine_info"]["compiled"] = {"cache_implementation": "static", "max_cache_len": 512}
    assert decode_context(bench) == 512


def test_history_appends_and_never_rewrites(tmp_path):
    first = history.append(tmp_path, "bench", "q8", {"tokens_per_s_batched": 10.0}, "c")
    before = first.read_bytes()
    second = history.append(tmp_path, "bench", "q8", {"tokens_per_s_batched": 11.0}, "c")
    history.append(tmp_path, "bench", "q8-kv-q4", {"tokens_per_s_batched": 99.0}, "c")  # a name it prefixes
    assert first != second and first.read_bytes() == before
    assert [r["figures"]["tokens_per_s_batched"] for r in history.records(tmp_path, "bench", "q8", "c")] == [10.0, 11.0]
    assert history.records(tmp_path, "engine", "q8", "c") == []


def test_only_runs_under_the_same_conditions_compare(tmp_path):
    """A run of another bench sweep (or other settings, or from before records kept their conditions)
    is never compared with this one: it would make a tie, or an unstable figure, out of a changed config."""
    sweep = {"bench": {"batch_sizes": [1, 2, 4, 8], "max_new_tokens": 32}, "settings": {"quantization": "F16"}}
    smaller = {**sweep, "bench": {"batch_sizes": [1, 4, 8], "max_new_tokens": 16}}
    assert history.fingerprint(sweep) == history.fingerprint(dict(reversed(sweep.items())))  # key order aside
    assert history.fingerprint(sweep) != history.fingerprint(smaller)
    history.append(tmp_path, "bench", "f16", {"tokens_per_s_batch8": 184.0}, history.fingerprint(sweep))
    history.append(tmp_path, "bench", "f16", {"tokens_per_s_batch8": 150.0}, history.fingerprint(smaller))
    older = json.loads(next((tmp_path / "history").iterdir()).read_text())
    del older["conditions"]
    (tmp_path / "history" / "bench-f16-20200101T000000000000Z-1.json").write_text(json.dumps(older))
    assert [r["figures"]["tokens_per_s_batch8"] for r in history.records(tmp_path, "bench", "f16",
                                                                         history.fingerprint(sweep))] == [184.0]
    assert history.records(tmp_path, "bench", "f16", None) == []


def test_a_killed_write_leaves_no_record(tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill arrives mid-write

    monkeypatch.setattr(json, "dump", killed)
    with pytest.raises(KeyboardInterrupt):
        history.append(tmp_path, "bench", "q8", {"tokens_per_s_batched": 10.0}, "c")
    monkeypatch.undo()
    assert history.records(tmp_path, "bench", "q8", "c") == []
    assert os.listdir(tmp_path / "history") == []


def test_an_existing_record_name_is_refused_not_replaced(tmp_path, monkeypatch):
    path = history.append(tmp_path, "bench", "q8", {"x": 1.0}, "c")
    monkeypatch.setattr(history.os, "link", lambda src, dst: (_ for _ in ()).throw(FileExistsError(dst)))
    with pytest.raises(FileExistsError):
        history.append(tmp_path, "bench", "q8", {"x": 2.0}, "c")
    assert json.loads(path.read_text())["figures"] == {"x": 1.0}
    assert len(list((tmp_path / "history").iterdir())) == 1  # no temporary file left behind


@pytest.mark.parametrize("values, expected", [([10.0, 10.2, 9.9], pytest.approx(0.03)), ([5.0], None),
                                              ([100.0, 200.0], pytest.approx(100 / 150))])
def test_spread_across_runs(values, expected):
    assert history.spread(values) == expected


def test_token_clock_on_a_known_clock(monkeypatch):
    ticks = iter([10.0, 10.5, 10.5, 10.7, 10.7, 11.0, 11.2])
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(ticks))
    clock = bench.TokenClock(2)  # started at 10.0
    for _ in range(3):
        clock(0)
        clock(1)
    assert clock.ttft() == pytest.approx([0.5, 0.5])
    assert clock.itl() == pytest.approx([0.2, 0.3, 0.2, 0.5])  # row 0's gaps, then row 1's


@pytest.mark.parametrize(("size", "expected"), [
    (1, [["a"], ["b"], ["c"]]),
    (2, [["a", "b"], ["c", "a"]]),  # the last batch is filled by cycling
    (3, [["a", "b", "c"]]),
    (5, [["a", "b", "c", "a", "b"]]),
])
def test_sweep_batches_cover_the_prompts_once(size, expected):
    assert bench.sweep_batches(["a", "b", "c"], size) == expected


def test_sweep_metrics_and_history_figures():
    def run(seconds, ttft, itl):
        return {"seconds": seconds, "tokens": 8, "ttft_s": ttft, "itl_s": itl}

    reps = [{"seconds": 2.0, "tokens": 16, "batches": [run(1.0, [0.1], [0.2, 0.3]), run(1.0, [0.3], [0.1, 0.1])]},
            {"seconds": 4.0, "tokens": 16, "batches": [run(2.0, [0.2], [0.5, 0.5]), run(2.0, [0.2], [0.4, 0.6])]}]
    single = bench.sweep_metrics(1, reps)
    assert single["tokens_per_s"]["values"] == [8.0, 4.0]
    assert single["ttft_s"]["values"] == [0.1, 0.3, 0.2, 0.2] and single["ttft_s"]["median"] == pytest.approx(0.2)
    assert single["itl_s"]["n"] == 8 and single["itl_s"]["p90"] == pytest.approx(0.53)
    assert bench.decode_rates(reps)["decode_tokens_per_s_single"]["values"] == pytest.approx([4 / 0.7, 4 / 2.0])
    metrics = {"load_s": {"median": 1.5}, "sweep": [{**single, "batch_size": 1},
                                                    {**bench.sweep_metrics(4, reps[:1]), "batch_size": 4}]}
    assert bench.at_batch(metrics)["batch_size"] == 4
    assert bench.history_figures(metrics) == pytest.approx({
        "load_s": 1.5, "tokens_per_s_batch1": 6.0, "tokens_per_s_batch4": 8.0,
        "ttft_s_batch1": 0.2, "itl_s_batch1": 0.35})


def test_parameter_count_reads_safetensors_headers(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(3, 4), "b": torch.zeros(5, dtype=torch.bfloat16)}, tmp_path / "model.safetensors")
    save_file({"c": torch.zeros(2, 2, 2)}, tmp_path / "extra.safetensors")
    assert disk.parameter_count(tmp_path) == 12 + 5 + 8


def test_the_reports_disk_estimate_reads_the_snapshot_manifest_when_the_weights_are_gone(tmp_path):
    """A report re-rendered from kept result files (scripts/rerender_report.py) has the snapshot's
    manifest but not its weights: the parameter count comes from the manifest, and without it the report
    says the estimate is not known (once it read 0 parameters and printed a need of 0.00 GB)."""
    import torch
    from safetensors.torch import save_file

    from enginebench.report_appendix import disk_summary

    variants = [{"slug": "t", "backend": "torch", "checkpoint": "torch", "settings": {"dtype": "float32"}}]
    results = {"t": {"checkpoint": {"status": "ok"}, "engine": {"status": "ok", "artifact_bytes": 0}}}
    preflight = {"disk": {"free_bytes": 5e9}}
    manifest = {"provenance": {}, "parameters": 1_000_000}
    assert disk_summary(tmp_path, manifest, variants, results, preflight)["need"].startswith(
        "estimated need of the configuration 0.00 GB (1 M parameters")
    unknown = disk_summary(tmp_path, {"provenance": {}}, variants, results, preflight)["need"]
    assert "not estimated" in unknown
    save_file({"a": torch.zeros(1000, 1000)}, tmp_path / "model.safetensors")  # an older manifest, weights here
    assert "(1 M parameters" in disk_summary(tmp_path, {"provenance": {}}, variants, results, preflight)["need"]


def test_disk_need_counts_a_shared_checkpoint_once():
    llama = {"checkpoint_type": "f16", "kv_cache": "f16"}
    variants = [{"backend": "torch", "checkpoint": "torch", "settings": {"dtype": "float32"}},
                {"backend": "llamacpp", "checkpoint": "gguf-f16", "settings": {**llama, "quantization": "F16"}},
                {"backend": "llamacpp", "checkpoint": "gguf-f16", "settings": {**llama, "quantization": "Q8_0"}}]
    # one F16 GGUF (2 bytes per weight), the F16 engine is that file, Q8_0 is 8.5 bits per weight
    assert disk.configured_need(variants, 1000) == pytest.approx(2000 + 0 + 1062.5)


def test_a_build_that_cannot_fit_is_refused_before_it_starts(tmp_path):
    free = disk.shutil.disk_usage(tmp_path).free
    assert disk.check_free(tmp_path / "engines" / "x", 1000, "the engine x")["free_bytes"] > 0
    with pytest.raises(EngineBenchError, match=r"disk: the engine x needs about .* GB free under"):
        disk.check_free(tmp_path / "engines" / "x", free, "the engine x")


def test_the_warm_up_feeds_every_prompt_shape_of_the_sweep_before_the_timed_runs(tiny_model):
    """bench.warm_up on the real tiny torch engine (its generate only watched): the first batch of each
    size runs in full (its seconds are the compile time a compiling engine reports), every other batch of
    the sweep gets its first prefill with two tokens, so no timed run pays a new shape's first cost."""
    from enginebench.backends import get_backend

    engine = get_backend("torch").load(tiny_model, None, None, {"dtype": "float32", "compile": False},
                                       threads=2, trust_remote_code=False)
    seen = []
    real = engine.generate

    def watched(batch, max_new_tokens, *args, **kwargs):
        seen.append((tuple(map(tuple, batch)), max_new_tokens))
        return real(batch, max_new_tokens, *args, **kwargs)

    engine.generate = watched
    prompts = [[1, 400, 401], [1, 402], [1, 403, 404, 405]]
    first = bench.warm_up(engine, prompts, [1, 2], 5, [2], warmups=1)
    assert set(first) == {1, 2} and all(s > 0 for s in first.values())
    fed = {(batch, n) for batch, n in seen}
    for size in (1, 2):
        batches = bench.sweep_batches(prompts, size)
        assert (tuple(map(tuple, batches[0])), 5) in fed
        assert {(tuple(map(tuple, b)), 2) for b in batches[1:]} <= fed
    assert len(seen) == 3 + 2  # size 1: 3 batches; size 2: 2 batches (the second cycles back to the first)


def test_other_processes_on_the_gpu_are_read_from_nvidia_smi():
    from enginebench.environment import parse_gpu_processes

    recorded = "4242, /usr/bin/python3, 15360\n777, ollama_llama_server, 8000\n5, [Not Found], [N/A]\n"
    assert parse_gpu_processes(recorded, own_pid=4242) == [
        {"pid": 777, "name": "ollama_llama_server", "memory_bytes": 8000 * 2**20},
        {"pid": 5, "name": "[Not Found]", "memory_bytes": None}]
    assert parse_gpu_processes("", own_pid=1) == []
