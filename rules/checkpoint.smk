# Stage 2: backend checkpoint. One per distinct checkpoint setting of a model, shared by every
# engine built from it (e.g. one GGUF F16 feeding several quantized engines).


rule checkpoint:
    wildcard_constraints:
        checkpoint=one_of_or_none(PLAN.checkpoint_slugs(in_container=False)),
    input:
        cli=cli_script("checkpoint"),
        snapshot=rules.snapshot.output.snapshot,
    output:
        checkpoint=directory(paths.CHECKPOINT),
    params:
        # Backend + the settings that define the checkpoint (not the engine-only ones), so an
        # engine-only change leaves the shared checkpoint alone.
        # Where the backend cannot run here, the spec also says why (plan.with_availability): a
        # record of that is retried once the cause is gone, e.g. the library is installed.
        spec=lambda w: spec_json(PLAN.checkpoint_spec(w.model, w.checkpoint)),
    # Before other ready jobs: every engine of the checkpoint, and their samples, benches and quality jobs,
    # wait for it (the default run's GGUF conversion ran alone on one of 2 cores for 40 s without it).
    priority: 1
    conda:
        CONDA_ENV
    log:
        log_path("checkpoint", "{checkpoint}"),
    shell:
        "python {input.cli:q} --spec {params.spec:q} --snapshot {input.snapshot:q}"
        " --out {output.checkpoint:q} > {log:q} 2>&1"
