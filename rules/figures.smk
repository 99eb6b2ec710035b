# Stage 7: the report's figures of one model, drawn from its bench and quality results only.


rule figures:
    input:
        cli=cli_script("figures"),
        bench=lambda w: model_targets(paths.BENCH, w.model),
        quality=lambda w: model_targets(paths.QUALITY, w.model),
        served=lambda w: [paths.SERVE.format(model=m, variant=v) for m, v in PLAN.served_engines() if m == w.model],
    output:
        **{
            name: report(
                paths.FIGURE.replace("{figure}", name),
                category="Figures",
                subcategory="{model}",
                labels={"model": "{model}", "figure": title},
            )
            for name, title in figure_names().items()
        },
    params:
        # Engine order and the gate thresholds (the verdict colours the points) are not result files.
        layout=lambda w: spec_json(PLAN.figures_layout(w.model)),
        out_dir=lambda w: str(Path(paths.FIGURE.format(model=w.model, figure="x")).parent),
    conda:
        CONDA_ENV
    log:
        log_path("figures", "figures"),
    shell:
        "python {input.cli:q} --layout {params.layout:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
