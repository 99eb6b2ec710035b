# Stage 9: the quality gate over every engine's verdict, after the report is written.


rule gate:
    input:
        cli=cli_script("gate"),
        report=rules.report.output.report,  # written first, so a failing gate still leaves the report
        quality=engine_targets(paths.QUALITY),
        predicted=[paths.PREDICTED.format(model=m, variant=v) for m, v in PLAN.predicted_engines()],
    output:
        gate=report(paths.GATE, category="Quality", labels={"model": "all", "file": "quality gate verdicts"}),
    params:
        # Engines and thresholds, and the models left out of the run (they fail it, after the report);
        # --fail-on-gate from quality.fail_on_gate.
        spec=lambda w: spec_json(PLAN.gate_spec()),
        fail=lambda w: "--fail-on-gate" if config["quality"]["fail_on_gate"] else "",
    conda:
        CONDA_ENV
    log:
        "results/logs/gate.log",
    shell:
        # On failure the log (the failing engines and why) is shown, not only its path.
        "python {input.cli:q} --spec {params.spec:q} {params.fail} --out {output.gate:q} > {log:q} 2>&1"
        " || {{ cat {log:q} >&2; exit 1; }}"
