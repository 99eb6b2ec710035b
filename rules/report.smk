# Stage 8: the Markdown comparison report, rendered from the result files only.


rule report:
    input:
        cli=cli_script("report"),
        preflight=rules.preflight.output.preflight,
        snapshots=expand(paths.SNAPSHOT, model=PLAN.models_to_measure),
        checkpoints=[paths.CHECKPOINT.format(model=m, checkpoint=c) for m, c in PLAN.all_checkpoints()],
        engines=engine_targets(paths.ENGINE),
        bench=engine_targets(paths.BENCH),
        samples=engine_targets(paths.SAMPLES),
        quality=engine_targets(paths.QUALITY),
        predicted=[paths.PREDICTED.format(model=m, variant=v) for m, v in PLAN.predicted_engines()],
        served=[paths.SERVE.format(model=m, variant=v) for m, v in PLAN.served_engines()],
        figures=figure_targets(),  # report.md links them
    output:
        report=report(paths.REPORT, category="Report", labels={"file": "report.md (Markdown)"}),
    params:
        # Model order, baselines and title shape the report without being result files; so do the
        # models left out because their snapshot cannot be imported here, with the reason.
        layout=lambda w: spec_json(PLAN.report_layout()),
    conda:
        CONDA_ENV
    log:
        "results/logs/report.log",
    shell:
        "python {input.cli:q} --layout {params.layout:q} --out {output.report:q} > {log:q} 2>&1"
