# Stage 5: output samples, the greedy answers a person (and the quality stage) reads.
# It times nothing, so it takes half the cores (UNTIMED_THREADS) and another such job runs beside it.


rule samples:
    wildcard_constraints:
        variant=one_of_or_none(PLAN.engine_slugs(in_container=False)),  # trtllm_* in rules/trtllm.smk
    input:
        cli=cli_script("samples"),
        snapshot=rules.snapshot.output.snapshot,
        checkpoint=checkpoint_of,
        engine=rules.engine.output.engine,
    output:
        samples=report(paths.SAMPLES, category="Samples", subcategory="{model}",
                       labels={"model": "{model}", "engine": "{variant}", "file": "samples (JSON)"}),
    params:
        # Engine spec + prompts + sample length define the answers.
        spec=lambda w: spec_json(PLAN.runtime_spec(w.model, w.variant, "samples")),
    threads: UNTIMED_THREADS
    resources:
        gpu=gpus,
        gpu_jobs=gpu_jobs(gpus),
    conda:
        CONDA_ENV
    log:
        log_path("samples", "{variant}"),
    shell:
        "python {input.cli:q} --spec {params.spec:q} --snapshot {input.snapshot:q}"
        " --checkpoint {input.checkpoint:q} --engine {input.engine:q} --threads {threads}"
        " --out {output.samples:q} > {log:q} 2>&1"
