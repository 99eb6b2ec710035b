"""The results layer (enginebench.results): every result file is read and written through one declared
layout per stage, and a file that does not match is one error naming the file and the field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from enginebench import results
from enginebench.errors import EngineBenchError
from enginebench.plan import build_plan, load_config
from enginebench.report import render_report

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

# path pattern under a results folder -> the stage whose layout its files have
RESULT_FILES = {
    "host/preflight.json": "preflight", "*/snapshot/manifest.json": "snapshot",
    "*/checkpoints/*/manifest.json": "checkpoint", "*/engines/*/manifest.json": "engine",
    "*/logits-engines/*/manifest.json": "engine", "*/bench/*.json": "bench", "*/samples/*.json": "samples",
    "*/quality/*.json": "quality", "*/predicted/*.json": "predicted_quality", "quality-gate.json": "gate",
    "*/history/*.json": "history", "*/serve/*.json": "serve",
}


# every report kept under docs/ -> the config it was made with
DOCS_REPORTS = {"default-report": "config.yaml", "gpu-report": "gpu.yaml", "gpu-report-7b": "qwen2.5-7b-gpu.yaml",
                "serve-cpu-report": "serve-cpu.yaml"}


def committed_records() -> list[tuple[Path, str]]:
    found = []
    for folder in DOCS_REPORTS:
        for pattern, stage in RESULT_FILES.items():
            found += [(path, stage) for path in sorted((DOCS / folder).glob(pattern))]
    return found


def test_every_committed_result_file_reads_through_its_layout():
    """The reports under docs/ were written before the layer: each of their result files matches its
    stage's declared layout (the samples records of unbuilt TensorRT-LLM engines, written by the bench
    CLI before record version 1, through the one declared migration)."""
    records = committed_records()
    stages = {stage for _, stage in records}
    assert {"preflight", "bench", "samples", "quality", "predicted_quality", "gate", "history", "serve"} <= stages
    for path, stage in records:
        record = results.read(path, stage)
        assert record["stage"] == stage or stage == "history", path


def test_a_hand_edited_bench_file_stops_the_report_with_one_error_naming_file_and_field(tmp_path):
    """The 7B H200 report's files (docs/gpu-report-7b, which scripts/rerender_report.py renders), one
    bench file without its figures: the renderer stops before it lays anything
    out, with one sentence naming the file, the field and the rule that re-makes it."""
    root = tmp_path / "run"
    for name in ("host", "qwen2.5-7b"):
        shutil.copytree(DOCS / "gpu-report-7b" / name, root / "results" / name)
    layout = build_plan(load_config(REPO / "config" / "qwen2.5-7b-gpu.yaml")).report_layout()  # as the rule
    assert "## qwen2.5-7b" in render_report(layout, root)  # the files as committed render
    bench = root / "results" / "qwen2.5-7b" / "bench" / "llamacpp-q8_0.json"
    record = json.loads(bench.read_text())
    del record["metrics"]
    bench.write_text(json.dumps(record))
    with pytest.raises(results.RecordError) as error:
        render_report(layout, root)
    message = str(error.value)
    assert message.startswith(f"{bench}: this bench result has no field 'metrics'")
    assert "snakemake --forcerun bench" in message


def test_rerender_changes_nothing_of_a_docs_folder_until_report_and_figures_are_made(tmp_path, capsys):
    """scripts/rerender_report.py on a copy of the 7B H200 report: without its snapshot manifest the
    report cannot render, and the folder keeps its old report and figures (once the new figures were
    copied in before the report failed); with it, report and figures are written."""
    import rerender_report

    docs = tmp_path / "gpu-report-7b"
    shutil.copytree(DOCS / "gpu-report-7b", docs)
    kept = [docs / "report.md", *(docs / "qwen2.5-7b" / "figures").iterdir()]
    for p in kept:
        p.write_bytes(b"old")
    manifest = docs / "qwen2.5-7b" / "snapshot" / "manifest.json"
    saved = manifest.read_bytes()
    manifest.unlink()
    config = ["--config", str(REPO / "config" / "qwen2.5-7b-gpu.yaml"), "--docs", str(docs)]
    assert rerender_report.main(config) == 2
    err = capsys.readouterr().err  # the file is named in the docs folder, not in the temporary copy
    assert f"{manifest}: no snapshot manifest there" in err and "left as it was" in err
    assert all(p.read_bytes() == b"old" for p in kept)
    manifest.write_bytes(saved)
    assert rerender_report.main(config) == 0
    assert "## qwen2.5-7b" in (docs / "report.md").read_text()
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in kept if p.suffix == ".png")


def test_writers_refuse_a_record_their_readers_would_refuse(tmp_path):
    out = tmp_path / "quality.json"
    with pytest.raises(results.RecordError, match="has no field 'metrics'"):
        results.write(out, {"stage": "quality", "spec": {}, "status": "ok", "is_reference": False})
    with pytest.raises(results.RecordError, match="has field 'status' = 'done', not one of ok"):
        results.write(out, {"stage": "quality", "spec": {}, "status": "done"})
    assert not out.exists()
    results.write(out, {"stage": "quality", "spec": {}, "status": "failed", "reason": "why"})
    written = json.loads(out.read_text())
    assert written["record_version"] == results.VERSION
    assert results.read(out, "quality") == written


def test_a_newer_or_foreign_record_is_named(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"stage": "bench", "spec": {}, "status": "failed", "reason": "x",
                                "record_version": results.VERSION + 1}))
    with pytest.raises(EngineBenchError, match=f"record_version {results.VERSION + 1}"):
        results.read(path, "bench")
    path.write_text(json.dumps({"stage": "samples", "spec": {}, "status": "failed", "reason": "x"}))
    with pytest.raises(EngineBenchError, match="is a 'samples' record, not a 'bench' one"):
        results.read(path, "bench")
    path.write_text("{not json")
    with pytest.raises(EngineBenchError, match="is not JSON"):
        results.read(path, "bench")
    with pytest.raises(EngineBenchError, match="no bench result there"):
        results.read(tmp_path / "missing.json", "bench")


def test_a_run_history_record_is_written_and_read_through_its_layout(tmp_path):
    from enginebench import history

    path = history.append(tmp_path, "bench", "v", {"tokens_per_s_batch1": 1.0}, "abc")
    record = results.read(path, "history")
    assert record["record_version"] == results.VERSION and record["stage"] == "bench"
    assert history.records(tmp_path, "bench", "v", "abc") == [record]
    broken = tmp_path / "history" / "bench-v-20000101T000000000000Z-1.json"
    broken.write_text(json.dumps({**record, "figures": None}))
    with pytest.raises(results.RecordError, match="'figures' = 'None', which is not an object: .*move it out"):
        history.records(tmp_path, "bench", "v", "abc")
    with pytest.raises(results.RecordError, match="refusing to write a run-history record that has field 'figures'"):
        history.append(tmp_path, "bench", "v", None, "abc")


@pytest.mark.parametrize("folder, config", DOCS_REPORTS.items())
def test_every_docs_report_is_what_todays_renderer_makes_of_its_files(tmp_path, folder, config):
    """A report kept under docs/ renders from the result files kept beside it, with the layout its config
    gives (as scripts/rerender_report.py does), and the committed report.md is that rendering, all but the
    "Generated" time: a change of the renderer that moves a report shows here until the report is re-made."""
    layout = build_plan(load_config(REPO / "config" / config)).report_layout()
    (tmp_path / "results").symlink_to(DOCS / folder)
    rendered = render_report(layout, tmp_path).splitlines()
    committed = (DOCS / folder / "report.md").read_text().splitlines()
    assert len(rendered) == len(committed)
    differ = [(old, new) for old, new in zip(committed, rendered, strict=True) if old != new]
    assert all("Generated" in old and "Generated" in new for old, new in differ), differ[:3]
