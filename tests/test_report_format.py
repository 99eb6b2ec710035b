import pandas as pd
import pytest

from enginebench import history
from enginebench.columns import compile_text
from enginebench.findings import history_spread, ranked, tie_reason
from enginebench.report_cells import fmt_number, markdown_table, pick_text, speedup_text, summary_cell, table
from enginebench.stats import summarize


@pytest.mark.parametrize("value, baseline, text", [
    (251.2, 153.7, "1.63×"),   # FP8 vs FP16 tokens/s in the experiment this grew from
    (57.5, 177.0, "0.32×"),    # slower than the baseline: the same direction, below 1
    (10.0, 10.0, "1.00×"),
    (None, 10.0, "—"),
    (5.0, None, "—"),
])
def test_speedup_is_one_direction_against_the_baseline(value, baseline, text):
    assert speedup_text(value, baseline) == text


def test_ties_are_called_where_ranges_overlap_or_history_spread_exceeds_the_difference(tmp_path):
    """Figures from the default report: q8_0 and q4_k_m single-stream overlap; f16 and bf16 at batch 8
    do not, but their run history spreads 9.8 %, more than their 3.7 % difference."""
    q8, q4 = summarize([86.0, 89.5, 89.9], "tokens/s"), summarize([82.6, 87.1, 88.1], "tokens/s")
    fp32 = summarize([12.2, 12.5, 12.6], "tokens/s")
    ranking = ranked({"fp32": fp32, "q4": q4, "q8": q8}, {"fp32": None, "q4": None, "q8": None})
    assert [r["variant"] for r in ranking] == ["q8", "q4", "fp32"]
    assert [r["tie"] for r in ranking] == [None, "ranges overlap", None]
    f16, bf16 = summarize([182.0, 184.0, 190.0], "tokens/s"), summarize([176.0, 177.0, 179.0], "tokens/s")
    assert tie_reason(f16, bf16, (None, None)) is None
    assert tie_reason(f16, bf16, (None, 0.098)) == "run-history spread 9.8% exceeds the 3.8% difference"
    assert tie_reason(f16, bf16, (0.02, 0.03)) is None
    text = pick_text("One request at a time", ranking, "tokens/s")
    assert text == ("One request at a time: **`q8`**, 89.5 tokens/s (86.0–89.9, n=3); a tie with `q4`, "
                    "87.1 tokens/s (82.6–88.1, n=3): ranges overlap.")


def test_history_spread_reads_the_runs_recorded_under_the_same_conditions(tmp_path):
    spec = {"bench": {"batch_sizes": [1, 8], "max_new_tokens": 16}, "settings": {"dtype": "bfloat16"}}
    result = {"bench": {"spec": spec}}
    for tps in (160.0, 177.0):
        history.append(tmp_path, "bench", "torch-bf16", {"tokens_per_s_batch8": tps}, history.fingerprint(spec))
    history.append(tmp_path, "bench", "torch-bf16", {"tokens_per_s_batch8": 90.0},
                   history.fingerprint({**spec, "bench": {"batch_sizes": [1, 8], "max_new_tokens": 64}}))
    assert history_spread(tmp_path, "torch-bf16", result, "tokens_per_s_batch8") == pytest.approx(17 / 168.5)
    assert history_spread(tmp_path, "llamacpp-f16", result, "tokens_per_s_batch8") is None


def test_constant_columns_leave_the_table_for_its_sentence():
    rows = [{"Engine": "a", "Device": "cpu", "Tokens/s": "1"}, {"Engine": "b", "Device": "cpu", "Tokens/s": "2"}]
    folded = table(rows)
    assert folded["constant"] == ["Device: cpu"]
    assert folded["table"].splitlines()[0] == "| Engine | Tokens/s |"
    assert table(rows[:1])["constant"] == []  # one row: nothing is "the same for every engine"
    assert table([]) is None


def test_summary_cell_shows_median_range_and_n():
    cell = summarize([10.0, 12.0, 11.0], "tokens/s")
    assert summary_cell(cell).text == "11.0 (10.0–12.0, n=3)"
    assert summary_cell(cell).value == 11.0
    assert summary_cell(summarize([0.5], "s")).text == "0.50 (n=1)"


def test_fmt_number():
    assert [fmt_number(x) for x in (1234.5, 56.78, 0.1234)] == ["1,234", "56.8", "0.12"]


def test_markdown_table_escapes_pipes_and_newlines():
    table = markdown_table(pd.DataFrame([{"A": "x|y", "B": "line1\nline2"}]))
    assert table.splitlines() == ["| A | B |", "|---|---|", "| x\\|y | line1<br>line2 |"]


def test_compile_cell_says_whether_cuda_graphs_were_captured():
    """The compiled engine's bench records its CUDA graphs (torch_backend.StaticDecoder.record); the cost
    table says how many were captured, or that torch skipped them and why."""
    def bench(graphs):
        compiled = {"mode": "reduce-overhead", **({"cuda_graphs": graphs} if graphs else {})}
        return {"metrics": {"compile_s": {"value": 31.4}}, "engine_info": {"compiled": compiled}}

    assert compile_text(bench({"captured": 3, "skipped": 0, "skip_reasons": []})) == \
        "31.4 (1 run); 3 CUDA graphs captured, none skipped"
    assert compile_text(bench({"captured": 0, "skipped": 2, "skip_reasons": ["skipping cudagraphs due to mutated "
                                                                              "inputs (1 instances)"]})) == \
        "31.4 (1 run); CUDA graphs skipped 2×: skipping cudagraphs due to mutated inputs (1 instances)"
    assert compile_text(bench(None)) == "31.4 (1 run)"  # on a CPU: no graphs to capture
    assert compile_text({"metrics": {}, "engine_info": {}}) == "none"


def test_a_beaten_bound_says_so_and_the_bound_is_the_best_repetition():
    """The roofline divides by the best of the preflight's repetitions (preflight.measured_rate); an
    engine above its bound gets the sentence that the bound is wrong, never a bare share above 100 %."""
    from enginebench.columns import roofline_cells

    env = {"host": "n1", "job": {"node": "n1"}, "cpu": "x", "gpus": []}
    llama = {"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_size": 64}
    host = {"environment": env, "model_config": llama,
            "bandwidth": {"host": {"median": 8.0, "min": 5.0, "max": 10.0},
                          "device": {"median": 4000.0, "min": 3900.0, "max": 4100.0}}}

    def bench(tokens_per_s, device="cpu", parallel=None):
        settings = {"parallel": parallel} if parallel else {}
        return {"bench": {"environment": env, "describe": {"kv_cache": "f16"}, "prompt_tokens": [4],
                          "spec": {"bench": {"max_new_tokens": 8}, "settings": settings},
                          "engine_info": {"device": device, "weight_bytes": 10**9},
                          "metrics": {"decode_tokens_per_s_single": {"median": tokens_per_s}}}}

    bound, share = roofline_cells(bench(5.0), host)
    assert float(bound) == pytest.approx(10.0, rel=0.01)  # 10 GB/s (the best) over ~1 GB per token
    assert share == "50%"
    _, beaten = roofline_cells(bench(10.4), host)
    assert beaten.startswith("104%: above its bound, so the bound is wrong")
    # past one GPU: a tensor or row split's GPUs read at once (their bandwidths add up), a layer split's in
    # turn (one GPU's), and ranks on the CPU read the host's one memory
    one_gpu = float(roofline_cells(bench(1.0, "cuda:0"), host)[0].replace(",", ""))
    assert one_gpu == pytest.approx(4100.0, rel=0.01)
    for mode, gpus, times in (("tensor", 4, 4), ("row", 2, 2), ("layer", 2, 1)):
        bound, _ = roofline_cells(bench(1.0, "cuda:0", {"gpus": gpus, "mode": mode}), host)
        assert float(bound.replace(",", "")) == pytest.approx(one_gpu * times, rel=0.001)
    assert roofline_cells(bench(5.0, "cpu", {"gpus": 2, "mode": "tensor"}), host) == roofline_cells(bench(5.0), host)


def test_the_host_lines_say_how_each_bandwidth_was_measured():
    """preflight_lines: the bound's figure (the best repetition), idle or busy, and other GPU processes."""
    from enginebench.report_appendix import preflight_lines

    def measured(**more):
        return {"median": 9.0, "min": 8.0, "max": 10.0, "n": 5, "method": "m", **more}

    idle = {"busy": False, "other_share": 0.01}
    preflight = {"environment": {"host": "n1", "cpu": "x", "cpu_cores": 2, "ram_bytes": 0},
                 "disk": {"path": "results/host", "free_bytes": 1e9}, "gpus": [],
                 "bandwidth": {"host": measured(host_load=idle, attempts=1),
                               "device": measured(gpu_processes=[{"pid": 7, "name": "ollama", "memory_bytes": 1}])}}
    host, device = preflight_lines(preflight)[-2:]
    assert host == "Memory bandwidth, host: 10.0 GB/s, the best of n=5 (median 9.0, min 8.0; m); idle host (others " \
                   "used 1% of the CPU)"
    assert device.endswith("other processes on the GPU: ollama (pid 7): the bounds below may be too low")
    preflight["bandwidth"]["device"] = measured(gpu_processes=[])
    assert preflight_lines(preflight)[-1].endswith("; no other process on the GPU")


def test_every_table_is_made_of_declared_columns_and_a_new_one_shows_in_each_table_that_lists_it():
    """columns.TABLES names only columns of the vocabulary; the energy column, added by its entry and its
    name in two tables (the sweep's shows batch 1), shows a figure where the bench measured one and the
    reason where not."""
    from enginebench.columns import COLUMNS, TABLES, Row, notes, row

    assert {name for names in TABLES.values() for name in names} <= set(COLUMNS)
    assert [t for t, names in TABLES.items() if "energy" in names] == ["batch", "sweep"]
    measured = {"tokens_per_s": summarize([10.0], "tokens/s"), "energy_j_per_token": summarize([0.5, 0.4], "J/token")}
    bench = {"metrics": {"energy": {"counter": "GPU 0 alone"}}, "host_load": None}
    assert COLUMNS["energy"].cell(Row("a", {"bench": bench}, point=measured)) == "450 (400–500, n=2)"  # mJ
    why = {"counter": None, "reason": "no GPU, and no RAPL energy counter on this host"}
    point = {"batch_size": 1, "tokens_per_s": summarize([10.0], "tokens/s"), "ttft_s": summarize([0.1], "s"),
             "itl_s": summarize([0.01], "s")}
    cells = row("sweep", Row("b", {"bench": {"metrics": {"energy": why}, "host_load": None}}, point=point,
                             batch1=point))
    assert list(cells) == [COLUMNS[name].header for name in TABLES["sweep"]]
    assert cells["Energy (mJ/token)"] == "not measured: no GPU, and no RAPL energy counter on this host"
    # what the figures count is said once above the table, where a row has them
    counted = Row("a", {"bench": bench}, point=measured)
    assert notes("sweep", [Row("b", {"bench": {"metrics": {"energy": why}}}, point=point)]) == []
    assert notes("sweep", [counted]) == ["Energy (mJ/token): the energy counter's rise over each timed repetition ÷ "
                                         "the tokens it generated; counted by GPU 0 alone (`a`)."]
