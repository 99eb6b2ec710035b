"""The report's findings (enginebench.findings) decided from records, checked on data, not on prose:
the committed default report's result files, and the same files with one condition changed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from enginebench.bench import at_batch
from enginebench.findings import answer, load_results, ran
from enginebench.plan import build_plan, load_config

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "default-report"


@pytest.fixture(scope="module")
def default_results(tmp_path_factory):
    plan = build_plan(load_config(REPO / "config" / "config.yaml"))
    layout = plan.report_layout()
    model = layout["models"][0]
    root = tmp_path_factory.mktemp("run")
    (root / "results").symlink_to(DOCS)
    results = load_results(root, model["slug"], model["variants"], layout["quality"]["gate"])
    return results, root / "results" / model["slug"], max(layout["bench"]["batch_sizes"])


def test_the_answer_follows_from_the_records(default_results):
    results, model_dir, largest = default_results
    found = answer(results, model_dir, largest)
    verdicts = {v: r["verdict"]["verdict"] for v, r in results.items()}
    passing = {v for v, r in results.items() if ran(r) and verdicts[v] == "PASS"}
    assert passing and found["busy"] == {} and found["no_reference"] == []
    assert [a["variant"] for a in found["avoid"]] == [v for v, r in results.items() if ran(r) and verdicts[v] == "FAIL"]
    assert [n["variant"] for n in found["not_built"]] == [v for v, r in results.items() if not ran(r)]
    weights = {v: results[v]["bench"]["engine_info"]["weight_bytes"] for v in passing}
    assert found["smallest"]["variant"] == min(weights, key=weights.get)
    assert [p["batch_size"] for p in found["picks"]] == [1, largest]
    for pick in found["picks"]:
        ranking = pick["ranking"]
        assert {r["variant"] for r in ranking} == passing
        medians = [at_batch(results[r["variant"]]["bench"]["metrics"], pick["batch_size"])["tokens_per_s"]["median"]
                   for r in ranking]
        assert medians == sorted(medians, reverse=True)
        assert ranking[0]["tie"] is None


def test_a_busy_bench_or_a_broken_reference_ranks_nothing(default_results):
    results, model_dir, largest = default_results
    busy = copy.deepcopy(results)
    fastest = answer(results, model_dir, largest)["picks"][0]["ranking"][0]["variant"]
    busy[fastest]["bench"]["host_load"] = {**busy[fastest]["bench"]["host_load"], "busy": True, "other_share": 0.4}
    found = answer(busy, model_dir, largest)
    assert found["busy"] == {fastest: 0.4} and found["picks"] == []

    broken = copy.deepcopy(results)
    for result in broken.values():
        result["verdict"] = {"verdict": "NO REFERENCE", "reasons": ["the reference engine is broken: x"], "checks": []}
    found = answer(broken, model_dir, largest)
    assert found["no_reference"] == ["the reference engine is broken: x"]
    assert found["picks"] == [] and found["avoid"] == [] and found["smallest"] is None


def test_serving_ranks_only_passing_engines_whose_server_answered_as_they_do(default_results):
    """Serve records attached to the committed run's engines: a served engine that passes is ranked by its
    best step within the SLO; one whose answers differ, one whose server failed, one not served and a
    failing engine's (whatever its figures) are not."""
    from enginebench.findings import serving

    results, _, _ = default_results
    results = copy.deepcopy(results)
    verdicts = {v: r["verdict"]["verdict"] for v, r in results.items() if ran(r)}
    passing = [v for v, verdict in verdicts.items() if verdict == "PASS"]
    failing = next(v for v, verdict in verdicts.items() if verdict == "FAIL")
    fast, slow, differs, broken, unserved = passing[:5]

    def ok(requests_per_s):
        step = {"requests_per_s": requests_per_s, "meets_slo": True}
        return {"status": "ok", "check": {"passed": True}, "steps": [step], "best": step}

    results[fast]["serve"], results[slow]["serve"], results[failing]["serve"] = ok(9.0), ok(3.0), ok(99.0)
    results[differs]["serve"] = {"status": "failed", "reason": "served output differs", "check": {"passed": False}}
    results[broken]["serve"] = {"status": "failed", "reason": "the server exited", "check": {"passed": True}}
    results[unserved]["serve"] = {"status": "unavailable", "reason": "no server for torch engines yet"}
    found = serving(results)
    assert [r["variant"] for r in found["ranking"]] == [fast, slow] and found["ranking"][1]["tie"] is None
    assert list(found["differs"]) == [differs] and list(found["failed"]) == [broken]
    assert list(found["not_served"]) == [unserved]
    results[slow]["serve"]["best"] = None
    assert serving(results)["none_within"] == [slow]
    results[fast]["serve"]["host_load"] = {"busy": True, "other_share": 0.4}  # measured beside other work
    found = serving(results)
    assert found["ranking"] == [] and found["busy"] == {fast: 0.4}


def test_repeated_sweeps_give_each_step_a_median_and_range_and_overlapping_engines_tie(default_results):
    """serve.repetitions: each step's figures are the median over the sweeps with the requests/s range;
    a step meets the SLO only where every sweep's did; engines whose best steps' ranges overlap tie."""
    from enginebench.findings import serving
    from enginebench.serve import best_step, combined_steps

    def step(concurrency, rps, ttft_p90, meets=True):
        return {"concurrency": concurrency, "completed": 8, "errored": 0, "incomplete": 0, "duration_s": 2.0,
                "requests_per_s": rps, "output_tokens_per_s": rps * 32, "slo_attainment": 1.0, "goodput_rps": rps,
                "ttft_ms": {"p50": ttft_p90 / 2, "p90": ttft_p90}, "itl_ms": {"p90": 10.0}, "e2e_s": {},
                "meets_slo": meets}

    sweeps = [[step(1, 2.0, 100), step(4, 6.0, 300)], [step(1, 2.2, 110), step(4, 7.0, 900, meets=False)],
              [step(1, 2.4, 120), step(4, 6.5, 320)]]
    steps = combined_steps(sweeps)
    assert [s["requests_per_s"] for s in steps] == [2.2, 6.5]
    rates = steps[0]["requests_per_s_summary"]
    assert (rates["min"], rates["max"], rates["n"]) == (2.0, 2.4, 3) and steps[0]["ttft_ms"]["p90"] == 110
    assert steps[0]["completed"] == 24 and steps[0]["sweeps"] == 3
    assert not steps[1]["meets_slo"] and best_step(steps) is steps[0]  # one sweep missed the SLO at 4 in flight

    results, _, _ = default_results
    results = copy.deepcopy(results)
    a, b = [v for v, r in results.items() if ran(r) and r["verdict"]["verdict"] == "PASS"][:2]

    def served(rates):
        best = combined_steps([[step(1, x, 100)] for x in rates])[0]
        return {"status": "ok", "check": {"passed": True}, "steps": [best], "best": best}

    results[a]["serve"], results[b]["serve"] = served([9.0, 10.0, 11.0]), served([8.0, 8.5, 9.5])
    ranking = serving(results)["ranking"]
    assert [r["variant"] for r in ranking] == [a, b] and ranking[1]["tie"]  # 8.0-9.5 overlaps 9.0-11.0
    assert {k: ranking[0]["summary"][k] for k in ("median", "min", "max", "n")} == {"median": 10.0, "min": 9.0,
                                                                                  "max": 11.0, "n": 3}
    results[b]["serve"] = served([5.0, 5.5, 6.0])
    assert serving(results)["ranking"][1]["tie"] is None


def test_engines_that_differ_only_in_their_gpus_scale_against_the_fewest_that_ran_and_pass():
    """findings.scaling: a family is one backend and settings split one way (an engine on one GPU belongs to
    every split of its settings); its base is the fewest GPUs shown; one that failed the gate or did not run
    is listed apart, with why; efficiency is the speedup over the ratio of GPU counts, batch size by batch size."""
    from enginebench.findings import scaling

    def engine(backend, gpus=1, mode=None, tokens_per_s=(10.0, 30.0), verdict="PASS", status=("ok", ""),
               device="cuda", sizes=(1, 8), **more):
        settings = {"quantization": "F16", **more, **({"parallel": {"gpus": gpus, "mode": mode}} if mode else {})}
        sweep = [{"batch_size": size, "tokens_per_s": {"median": t, "min": t, "max": t, "n": 1}}
                 for size, t in zip(sizes, tokens_per_s, strict=True)]
        return {"spec": {"backend": backend, "settings": settings}, "status": status,
                "verdict": {"verdict": verdict, "reasons": []},
                "bench": {"metrics": {"sweep": sweep}, "engine_info": {"device": device}}}

    results = {
        "f16": engine("llamacpp", tokens_per_s=(10.0, 30.0)),
        "f16-layer2": engine("llamacpp", 2, "layer", tokens_per_s=(9.0, 54.0)),
        "f16-layer4": engine("llamacpp", 4, "layer", status=("failed", "bench: CUDA out of memory")),
        "f16-row2": engine("llamacpp", 2, "row", tokens_per_s=(16.0, 45.0)),
        "q4-row2": engine("llamacpp", 2, "row", quantization="Q4_K_M"),  # nothing of its settings on fewer GPUs
        "bf16-tp2": engine("torch", 2, "tensor", verdict="FAIL"),
        "bf16-tp4": engine("torch", 4, "tensor", tokens_per_s=(20.0, 80.0)),
        "bf16-tp8": engine("torch", 8, "tensor", tokens_per_s=(30.0, 100.0)),
        # build workers change how fast an engine builds, not what it runs: one family; the 1-GPU engine's job
        # got no GPU (it ran on the CPU): no ratio to it; a base without batch 8 gives that point no ratio
        "trt": engine("trtllm", device="cpu", build={"workers": None, "max_batch_size": 8}),
        "trt-tp2": engine("trtllm", 2, "tensor", sizes=(1,), tokens_per_s=(12.0,),
                          build={"workers": 2, "max_batch_size": 8}),
        "trt-tp4": engine("trtllm", 4, "tensor", tokens_per_s=(18.0, 50.0), build={"workers": 4, "max_batch_size": 8}),
    }
    found = {(f["backend"], f["mode"]): f for f in scaling(results)}
    assert set(found) == {("llamacpp", "layer"), ("llamacpp", "row"), ("torch", "tensor"), ("trtllm", "tensor")}
    trt = found[("trtllm", "tensor")]
    assert trt["base"] == "trt-tp2" and trt["elsewhere"] == [{"variant": "trt", "gpus": 1, "device": "cpu"}]
    assert [(p["batch_size"], p["speedup"]) for p in trt["shown"][1]["points"]] == [(1, 1.5)]
    layer = found[("llamacpp", "layer")]
    assert layer["base"] == "f16" and [m["variant"] for m in layer["shown"]] == ["f16", "f16-layer2"]
    points = layer["shown"][1]["points"]
    assert [(p["batch_size"], p["speedup"], p["efficiency"]) for p in points] == [(1, 0.9, 0.45), (8, 1.8, 0.9)]
    assert layer["not_run"] == [{"variant": "f16-layer4", "gpus": 4, "reason": "bench: CUDA out of memory"}]
    assert [m["variant"] for m in found[("llamacpp", "row")]["shown"]] == ["f16", "f16-row2"]
    torch = found[("torch", "tensor")]  # the 2-GPU engine fails the gate: 4 GPUs are the base
    assert torch["base"] == "bf16-tp4" and torch["failed"] == [{"variant": "bf16-tp2", "gpus": 2, "verdict": "FAIL"}]
    eight = torch["shown"][1]["points"]
    assert [(p["speedup"], p["efficiency"]) for p in eight] == [(1.5, 0.75), (1.25, 0.625)]


def test_what_one_gpu_holds_is_read_from_each_engines_own_records():
    """per_gpu.weights_per_gpu / kv_per_gpu: a TensorRT-LLM split's largest rank's engine file (its info has no
    weight_bytes), a torch split's largest rank (or rank 0's, recorded before), llama.cpp's buffers per GPU
    (a row split's CUDA_Split shared evenly); and a scaling family none of whose engines ran has no memory
    table (report_scaling)."""
    from enginebench.per_gpu import kv_per_gpu, weights_per_gpu
    from enginebench.report_scaling import scaling_section

    def bench(info, gpus=2, mode="tensor", kv=None):
        depths = [{"status": "ok", "context_tokens": 500, "kv_cache": kv}] if kv else []
        return {"engine_info": info, "metrics": {"depths": depths},
                "spec": {"settings": {"parallel": {"gpus": gpus, "mode": mode}}}}

    trt = bench({"device": "cuda", "tensor_parallel": {"ranks": 2, "collectives": "nccl"},
                 "rank_engine_bytes": [7_000_000, 6_000_000]})
    assert weights_per_gpu(trt) == (7_000_000, "the largest rank's engine file")
    assert kv_per_gpu(trt)[0] is None
    torch = bench({"weight_bytes": 100, "tensor_parallel": {"parameters": 50, "parameters_on_rank_0": 26}},
                  kv={"bytes": 1000, "how": "x"})
    assert weights_per_gpu(torch) == (52, "rank 0's shard") and kv_per_gpu(torch) == (2000, "rank 0's cache")
    torch["engine_info"]["tensor_parallel"]["largest_rank_weight_bytes"] = 55
    assert weights_per_gpu(torch) == (55, "the largest rank's shard")
    llama = bench({"weight_bytes": 1000, "model_buffer_bytes": {"CUDA0": 100, "CUDA_Split": 800, "CPU_Mapped": 100},
                   "kv_buffer_bytes": {"CUDA0": 60, "CUDA1": 40}}, mode="row", kv={"bytes": 1000, "how": "x"})
    assert weights_per_gpu(llama) == (500, "llama.cpp's model buffers")  # (100 + 800 / 2) / 1000 of the weights
    assert kv_per_gpu(llama) == (1200, "llama.cpp's KV buffers")  # 60 % of 2,000 per 1k tokens

    def unbuilt(gpus):
        settings = {"dtype": "bfloat16", **({"parallel": {"gpus": gpus, "mode": "tensor"}} if gpus > 1 else {})}
        return {"spec": {"backend": "trtllm", "settings": settings},
                "status": ("unavailable", "engine: no TensorRT-LLM"),
                "verdict": {"verdict": "NOT BUILT", "reasons": []}, "bench": {"status": "unavailable"}}

    section = scaling_section({"trt": unbuilt(1), "trt-tp2": unbuilt(2)}, host={})
    assert section["memory"] is None and section["families"][0]["table"] is None
    assert section["families"][0]["not_run"] == ["`trt` (1 GPU): engine: no TensorRT-LLM",
                                                 "`trt-tp2` (2 GPUs): engine: no TensorRT-LLM"]


def test_the_serving_section_says_how_many_sweeps_each_engine_had_and_which_met_the_slo(tmp_path):
    """The 7B H200 report's records (docs/gpu-report-7b): torch-bf16 swept twice (session 16), the llama.cpp
    engines once (session 12). A step whose medians lie within the SLO but one of whose sweeps did not is
    "no", with how many sweeps met it; the sweep counts are each engine's, from its record."""
    from enginebench.report_serve import serving_section, within_slo

    plan = build_plan(load_config(REPO / "config" / "qwen2.5-7b-gpu.yaml"))
    layout = plan.report_layout()
    model = layout["models"][0]
    (tmp_path / "results").symlink_to(REPO / "docs" / "gpu-report-7b")
    results = load_results(tmp_path, model["slug"], model["variants"], layout["quality"]["gate"])
    section = serving_section(results, plan.config["serve"], model["slug"])
    assert section["sweep_counts"] == {v: len(results[v]["serve"]["sweeps"]) if "sweeps" in results[v]["serve"] else 1
                                       for v in ("torch-bf16", "llamacpp-f16", "llamacpp-q4_k_m")}
    assert len(set(section["sweep_counts"].values())) > 1 and all(f"`{v}`" in section["sweeps"]
                                                                  for v in section["sweep_counts"])
    record = results["torch-bf16"]["serve"]
    cells = [within_slo(step, [sweep[i] for sweep in record["sweeps"]]) for i, step in enumerate(record["steps"])]
    # session 16's sweeps: the second met the SLO at 1, 4 and 16 in flight, the first at none; neither at 32
    assert [s["meets_slo"] for s in record["sweeps"][1]] == [True, True, True, False]
    assert not any(s["meets_slo"] for s in record["sweeps"][0])
    assert cells == ["no (met in 1 of 2 sweeps)"] * 3 + ["no"]
    rows = [line for line in section["steps"]["table"].splitlines() if line.startswith("| torch-bf16 |")]
    assert len(rows) == 4 and sum(line.endswith("| no (met in 1 of 2 sweeps) |") for line in rows) == 3
