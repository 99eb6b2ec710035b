"""Run every stage's CLI main([...]) in pipeline order under a results/ tree, as the rules do."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import bench as bench_cli
import checkpoint as checkpoint_cli
import engine as engine_cli
import figures as figures_cli
import predicted_quality as predicted_cli
import preflight as preflight_cli
import quality as quality_cli
import reference as reference_cli
import report as report_cli
import samples as samples_cli
import serve as serve_cli
import snapshot as snapshot_cli

from enginebench import paths
from enginebench.plan import Plan, build_plan, spec_json, validate_config


def run_pipeline(config: dict, model_path: Path, root: Path, *, bench: bool = True,
                 snapshot_of: dict[str, Callable[[Path], Path]] | None = None) -> Plan:
    """Run the stages for the one model of `config` (its source path set to `model_path`).
    `snapshot_of` maps a variant to a function that makes, from the snapshot, another snapshot folder
    for its engine to load (a damaged copy)."""
    config = json.loads(json.dumps(config))
    (model,) = config["models"]
    config["models"][model]["source"]["path"] = str(model_path)
    validate_config(config)
    plan = build_plan(config)
    snap = root / paths.SNAPSHOT.format(model=model)
    assert snapshot_cli.main(["--spec", spec_json(plan.snapshot_spec(model)), "--out", str(snap)]) == 0
    other_snapshot = {variant: make(snap) for variant, make in (snapshot_of or {}).items()}
    for _, ckpt in plan.all_checkpoints():
        assert checkpoint_cli.main(["--spec", spec_json(plan.checkpoint_spec(model, ckpt)), "--snapshot", str(snap),
                                    "--out", str(root / paths.CHECKPOINT.format(model=model, checkpoint=ckpt))]) == 0
    loaded = {}
    for _, variant in plan.all_engines():
        ckpt = root / paths.CHECKPOINT.format(model=model, checkpoint=plan.engines[(model, variant)].checkpoint)
        eng = root / paths.ENGINE.format(model=model, variant=variant)
        assert engine_cli.main(["--spec", spec_json(plan.engine_spec(model, variant)), "--snapshot", str(snap),
                                "--checkpoint", str(ckpt), "--out", str(eng)]) == 0
        loaded[variant] = ["--snapshot", str(other_snapshot.get(variant, snap)), "--checkpoint", str(ckpt),
                           "--engine", str(eng), "--threads", "2"]
        stages = ((bench_cli, "bench", paths.BENCH), (samples_cli, "samples", paths.SAMPLES))
        for cli, stage, pattern in stages if bench else stages[1:]:
            assert cli.main(["--spec", spec_json(plan.runtime_spec(model, variant, stage)), *loaded[variant],
                             "--out", str(root / pattern.format(model=model, variant=variant))]) == 0
        if (model, variant) in plan.served_engines():
            assert serve_cli.main(["--spec", spec_json(plan.serve_spec(model, variant)), *loaded[variant],
                                   "--samples", str(root / paths.SAMPLES.format(model=model, variant=variant)),
                                   "--out", str(root / paths.SERVE.format(model=model, variant=variant))]) == 0
    logits = {}  # the engines the quality stage reads logits from, where not the timed one
    for _, variant in plan.logits_engines():
        logits[variant] = root / paths.LOGITS_ENGINE.format(model=model, variant=variant)
        assert engine_cli.main(["--spec", spec_json(plan.logits_engine_spec(model, variant)), "--snapshot",
                                str(snap), *loaded[variant][2:4], "--out", str(logits[variant])]) == 0
    reference = plan.reference(model)
    ref_out = root / paths.REFERENCE.format(model=model)
    assert reference_cli.main(["--spec", spec_json(plan.reference_spec(model)), *loaded[reference],
                               "--out", str(ref_out)]) == 0
    for variant in loaded:
        quality_engine = loaded[variant][:5] + [str(logits.get(variant, loaded[variant][5]))] + loaded[variant][6:]
        assert quality_cli.main([
            "--spec", spec_json(plan.quality_spec(model, variant)), *quality_engine,
            "--samples", str(root / paths.SAMPLES.format(model=model, variant=variant)), "--reference", str(ref_out),
            "--reference-samples", str(root / paths.SAMPLES.format(model=model, variant=reference)),
            "--out", str(root / paths.QUALITY.format(model=model, variant=variant))]) == 0
    for _, variant in plan.predicted_engines():
        assert predicted_cli.main([
            "--spec", spec_json(plan.predicted_spec(model, variant)), "--snapshot", str(snap), "--reference",
            str(ref_out), "--reference-samples", str(root / paths.SAMPLES.format(model=model, variant=reference)),
            "--out", str(root / paths.PREDICTED.format(model=model, variant=variant))]) == 0
    if bench:
        assert preflight_cli.main(["--out", str(root / paths.PREFLIGHT)]) == 0
        figures = root / paths.FIGURE.format(model=model, figure="x")
        assert figures_cli.main(["--layout", spec_json(plan.figures_layout(model)), "--root", str(root),
                                 "--out-dir", str(figures.parent)]) == 0
        assert report_cli.main(["--layout", spec_json(plan.report_layout()), "--root", str(root),
                                "--out", str(root / paths.REPORT)]) == 0
    return plan
