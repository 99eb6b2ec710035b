# Stage 6: output quality. The reference engine scores the eval text once per model; every engine
# (the reference included, as a self-check) is then measured against it and gated.
# Nothing here is timed: the jobs take half the cores (UNTIMED_THREADS), so that two run side by side;
# the reference, which every other job here waits for, takes them all.


rule reference:
    input:
        cli=cli_script("reference"),
        snapshot=rules.snapshot.output.snapshot,
        checkpoint=reference_artifact(paths.CHECKPOINT),
        engine=reference_artifact(paths.ENGINE),
        eval_text=eval_text_input,
    output:
        reference=paths.REFERENCE,
    params:
        # Reference engine + eval text, windows and top-k define the stored distributions; the gate
        # thresholds do not, so changing one re-runs the quality jobs only.
        spec=lambda w: spec_json(PLAN.reference_spec(w.model)),
    threads: REFERENCE_THREADS
    priority: 1  # before the benches, so that the quality jobs can run beside the other untimed jobs
    conda:
        CONDA_ENV
    log:
        log_path("reference", "reference"),
    shell:
        "python {input.cli:q} --spec {params.spec:q} --snapshot {input.snapshot:q}"
        " --checkpoint {input.checkpoint:q} --engine {input.engine:q} --threads {threads}"
        " --out {output.reference:q} > {log:q} 2>&1"


rule quality:
    wildcard_constraints:
        model=one_of_or_none(PLAN.quality_models),  # placeholder models: quality_not_applicable
        variant=one_of_or_none(PLAN.engine_slugs(in_container=False)),  # trtllm_* in rules/trtllm.smk
    input:
        cli=cli_script("quality"),
        snapshot=rules.snapshot.output.snapshot,
        checkpoint=checkpoint_of,
        engine=rules.engine.output.engine,
        samples=rules.samples.output.samples,
        reference=rules.reference.output.reference,
        reference_samples=reference_artifact(paths.SAMPLES),
    output:
        quality=report(paths.QUALITY, category="Quality", subcategory="{model}",
                       labels={"model": "{model}", "engine": "{variant}", "file": "quality figures (JSON)"}),
    params:
        # Engine spec + reference slug + eval settings define the figures (verdicts: report, gate).
        spec=lambda w: spec_json(PLAN.quality_spec(w.model, w.variant)),
    threads: UNTIMED_THREADS
    resources:
        gpu=gpus,
        gpu_jobs=gpu_jobs(gpus),
    conda:
        CONDA_ENV
    log:
        log_path("quality", "{variant}"),
    shell:
        "python {input.cli:q} --spec {params.spec:q} --snapshot {input.snapshot:q}"
        " --checkpoint {input.checkpoint:q} --engine {input.engine:q} --samples {input.samples:q}"
        " --reference {input.reference:q} --reference-samples {input.reference_samples:q}"
        " --threads {threads} --out {output.quality:q} > {log:q} 2>&1"


# A placeholder model's weights are random: its engines' quality means nothing, so none is measured
# and each engine's quality record says so (verdict NOT APPLICABLE), without loading the engine; an
# engine that was not built says that instead (NOT RUN, or NO VERDICT where its build failed).
rule quality_not_applicable:
    wildcard_constraints:
        model=one_of_or_none(PLAN.speed_only_models),
    input:
        cli=cli_script("speed_only"),
        engine=paths.ENGINE,  # its manifest: built, or why not
    output:
        quality=paths.QUALITY,
    params:
        # The reason (placeholder weights, their seed and architecture) is the record's content.
        spec=lambda w: spec_json(PLAN.not_applicable_spec(w.model, w.variant)),
    conda:
        CONDA_ENV
    log:
        log_path("quality", "{variant}"),
    shell:
        "python {input.cli:q} --spec {params.spec:q} --engine {input.engine:q} --out {output.quality:q}"
        " > {log:q} 2>&1"


rule predicted_quality:
    wildcard_constraints:
        variant=one_of_or_none([v for _, v in PLAN.predicted_engines()]),
    input:
        cli=cli_script("predicted_quality"),
        # No checkpoint or engine: the prediction is made from the snapshot before any build (and
        # holds where stage 1's export is refused, e.g. an architecture TensorRT-LLM lacks).
        snapshot=rules.snapshot.output.snapshot,
        reference=rules.reference.output.reference,
        reference_samples=reference_artifact(paths.SAMPLES),
    output:
        predicted=report(paths.PREDICTED, category="Quality", subcategory="{model}",
                         labels={"model": "{model}", "engine": "{variant}", "file": "predicted quality (JSON)"}),
    params:
        # The quality spec, plus the prompts and sample length of the stand-in's own samples.
        spec=lambda w: spec_json(PLAN.predicted_spec(w.model, w.variant)),
    threads: UNTIMED_THREADS
    # The longest untimed jobs (~85 s each on 2 cores) start first, beside each other and the quality jobs,
    # not last with a core idle beside them: every bench takes all cores, so nothing else can fill it.
    priority: 1
    conda:
        CONDA_ENV
    log:
        log_path("predicted", "{variant}"),
    shell:
        "python {input.cli:q} --spec {params.spec:q} --snapshot {input.snapshot:q}"
        " --reference {input.reference:q} --reference-samples {input.reference_samples:q}"
        " --threads {threads} --out {output.predicted:q} > {log:q} 2>&1"
