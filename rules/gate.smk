# Stage 8: the quality gate over every engine's verdict, after the report is written.


rule gate:
    input:
        cli=cli_script("gate"),
        report=rules.report.output.report,  # written first, so a failing gate still leaves the report
        quality=engine_targets(paths.QUALITY),
    output:
        gate=paths.GATE,
    params:
        layout=lambda w: spec_json(PLAN.report_layout()),
        fail=lambda w: "--fail-on-gate" if config["quality"]["fail_on_gate"] else "",
    conda:
        CONDA_ENV
    log:
        "results/logs/gate.log",
    shell:
        "python {input.cli:q} --layout {params.layout:q} {params.fail} --out {output.gate:q} > {log:q} 2>&1"
