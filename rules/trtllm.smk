# Every TensorRT-LLM job (stage 1 checkpoint, trtllm-build of the timed and the logits engine, bench,
# samples, quality) runs in the pinned NGC container with the GPU: the rules declare `container:`
# and `gpu=1`; profiles/trtllm runs them through `apptainer exec --nv`. The container tag is part of
# every spec (params), so upgrading it marks the artifacts stale. The generic rules of these stages
# take the other backends' variants only (their wildcard constraints).
#
# Each job first writes to its log, and shows in `snakemake -n -p`, the tool command it runs and
# where: `apptainer exec <apptainer-args> docker://<image>` when Snakemake starts the container
# (that line is a param: switching between the apptainer and the docker route reruns these jobs).


# quantize.py's calibration data, prepared offline on the host from the configured text (unless
# calibration.dataset names a dataset): the folder form it reads as --calib_dataset (enginebench.calibration).
rule trtllm_calibration:
    wildcard_constraints:
        checkpoint=one_of_or_none([c for _, c in PLAN.prepared_calibrations()]),
    input:
        cli=cli_script("calibration"),
        snapshot=rules.snapshot.output.snapshot,
    output:
        calibration=directory(paths.CALIBRATION),
    params:
        spec=lambda w: spec_json(PLAN.calibration_spec(w.model, w.checkpoint)),
    conda:
        CONDA_ENV
    log:
        log_path("calibration", "{checkpoint}"),
    shell:
        "python {input.cli:q} --spec {params.spec:q} --snapshot {input.snapshot:q}"
        " --out {output.calibration:q} > {log:q} 2>&1"


rule trtllm_checkpoint:
    wildcard_constraints:
        checkpoint=one_of_or_none(PLAN.checkpoint_slugs(in_container=True)),
    input:
        cli=cli_script("checkpoint"),
        snapshot=rules.snapshot.output.snapshot,
        calibration=calibration_of,  # the prepared folder quantize.py reads, where it reads one
    output:
        checkpoint=directory(paths.CHECKPOINT),
    params:
        spec=lambda w: spec_json(PLAN.checkpoint_spec(w.model, w.checkpoint)),
        runs=trtllm_invocation("checkpoint"),
    container:
        CONTAINER
    resources:
        gpu=1,  # quantize.py calibrates on the GPU; convert_checkpoint.py loads the model onto it
    log:
        log_path("checkpoint", "{checkpoint}"),
    shell:
        "echo {params.runs:q} > {log:q}; python {input.cli:q} --spec {params.spec:q} --snapshot {input.snapshot:q}"
        " --out {output.checkpoint:q} >> {log:q} 2>&1"


rule trtllm_engine:
    wildcard_constraints:
        variant=one_of_or_none(PLAN.engine_slugs(in_container=True)),
    input:
        cli=cli_script("engine"),
        snapshot=rules.snapshot.output.snapshot,
        checkpoint=checkpoint_of,
    output:
        engine=directory(paths.ENGINE),
    params:
        spec=lambda w: spec_json(PLAN.engine_spec(w.model, w.variant)),
        runs=trtllm_invocation("engine"),
    container:
        CONTAINER
    resources:
        gpu=1,
    log:
        log_path("engine", "{variant}"),
    shell:
        "echo {params.runs:q} > {log:q}; python {input.cli:q} --spec {params.spec:q} --snapshot {input.snapshot:q}"
        " --checkpoint {input.checkpoint:q} --out {output.engine:q} >> {log:q} 2>&1"


use rule trtllm_engine as trtllm_logits_engine with:
    wildcard_constraints:
        variant=one_of_or_none([v for _, v in PLAN.logits_engines()]),
    output:
        engine=directory(paths.LOGITS_ENGINE),
    params:
        # The timed engine's spec plus --gather_context_logits: same checkpoint, same settings.
        spec=lambda w: spec_json(PLAN.logits_engine_spec(w.model, w.variant)),
        runs=trtllm_invocation("logits_engine", paths.LOGITS_ENGINE),
    log:
        log_path("logits-engine", "{variant}"),


rule trtllm_bench:
    wildcard_constraints:
        variant=one_of_or_none(PLAN.engine_slugs(in_container=True)),
    input:
        cli=cli_script("bench"),
        snapshot=rules.snapshot.output.snapshot,
        checkpoint=checkpoint_of,
        engine=rules.trtllm_engine.output.engine,
        eval_text=eval_text_input,  # the context of the context-depth runs
    output:
        result=report(paths.BENCH, category="Bench", subcategory="{model}",
                     labels={"model": "{model}", "engine": "{variant}", "file": "bench (JSON)"}),
    params:
        spec=lambda w: spec_json(PLAN.runtime_spec(w.model, w.variant, "bench")),
        runs=trtllm_invocation("bench"),
    threads: workflow.cores
    container:
        CONTAINER
    resources:
        gpu=1,
    log:
        log_path("bench", "{variant}"),
    shell:
        "echo {params.runs:q} > {log:q}; python {input.cli:q} --spec {params.spec:q} --snapshot {input.snapshot:q}"
        " --checkpoint {input.checkpoint:q} --engine {input.engine:q} --threads {threads}"
        " --out {output.result:q} >> {log:q} 2>&1"


# The bench's container, GPU and shell, with the samples CLI and no eval text (a use rule's input is
# replaced whole: the bench's cli= would otherwise stay, and bench the engine into the samples file).
use rule trtllm_bench as trtllm_samples with:
    input:
        cli=cli_script("samples"),
        snapshot=rules.snapshot.output.snapshot,
        checkpoint=checkpoint_of,
        engine=rules.trtllm_engine.output.engine,
    output:
        result=report(paths.SAMPLES, category="Samples", subcategory="{model}",
                       labels={"model": "{model}", "engine": "{variant}", "file": "samples (JSON)"}),
    params:
        spec=lambda w: spec_json(PLAN.runtime_spec(w.model, w.variant, "samples")),
        runs=trtllm_invocation("samples"),
    threads: UNTIMED_THREADS
    log:
        log_path("samples", "{variant}"),


rule trtllm_quality:
    wildcard_constraints:
        model=one_of_or_none(PLAN.quality_models),  # placeholder models: quality_not_applicable
        variant=one_of_or_none(PLAN.engine_slugs(in_container=True)),
    input:
        cli=cli_script("quality"),
        snapshot=rules.snapshot.output.snapshot,
        checkpoint=checkpoint_of,
        # Logits from the engine built for them; the samples (rule input) from the timed engine.
        engine=rules.trtllm_logits_engine.output.engine,
        samples=rules.trtllm_samples.output.result,
        reference=rules.reference.output.reference,
        reference_samples=reference_artifact(paths.SAMPLES),
    output:
        quality=report(paths.QUALITY, category="Quality", subcategory="{model}",
                       labels={"model": "{model}", "engine": "{variant}", "file": "quality figures (JSON)"}),
    params:
        spec=lambda w: spec_json(PLAN.quality_spec(w.model, w.variant)),
        runs=trtllm_invocation("quality", paths.LOGITS_ENGINE),
    threads: workflow.cores
    container:
        CONTAINER
    resources:
        gpu=1,
    log:
        log_path("quality", "{variant}"),
    shell:
        "echo {params.runs:q} > {log:q}; python {input.cli:q} --spec {params.spec:q} --snapshot {input.snapshot:q}"
        " --checkpoint {input.checkpoint:q} --engine {input.engine:q} --samples {input.samples:q}"
        " --reference {input.reference:q} --reference-samples {input.reference_samples:q}"
        " --threads {threads} --out {output.quality:q} >> {log:q} 2>&1"
