# Stage 3: engine build (quantize / compile) from its checkpoint.


rule engine:
    wildcard_constraints:
        variant=one_of_or_none(PLAN.engine_slugs(in_container=False)),
    input:
        cli=cli_script("engine"),
        snapshot=rules.snapshot.output.snapshot,
        checkpoint=checkpoint_of,
    output:
        engine=directory(paths.ENGINE),
    params:
        # Every setting of the variant defines the engine; changing one rebuilds only this engine.
        # Where the backend cannot run here, the spec also says why (plan.with_availability): a
        # record of that is retried once the cause is gone, e.g. the library is installed.
        spec=lambda w: spec_json(PLAN.engine_spec(w.model, w.variant)),
    conda:
        CONDA_ENV
    log:
        log_path("engine", "{variant}"),
    shell:
        "python {input.cli:q} --spec {params.spec:q} --snapshot {input.snapshot:q}"
        " --checkpoint {input.checkpoint:q} --out {output.engine:q} > {log:q} 2>&1"
