# Every TensorRT-LLM job (stage 1 checkpoint, trtllm-build of the timed and the logits engine, bench,
# samples, quality) runs in the pinned NGC container with the GPU: these are the generic stage rules
# (`use rule ... with:`) taking the containerized variants (their wildcard constraints; the generic
# rules take the others), declaring `container:` and no conda environment of ours; each job declares the
# GPUs it uses (Backend.gpus: stage 1 one, a build min(tp ranks, build.workers), a runtime job its ranks).
# profiles/trtllm runs them through `apptainer exec --nv`; the serve job is a host job (rules/serve.smk).
# The container tag is part of every spec (params), so upgrading it marks the artifacts stale.
#
# Each job's spec also says what it runs and where (container_spec: the tool command, and
# `apptainer exec <apptainer-args> docker://<image>` when Snakemake starts the container); its CLI
# prints that first to the log, and `snakemake -n -p` shows it. It is a param: switching between the
# apptainer and the docker route reruns these jobs.


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


use rule checkpoint as trtllm_checkpoint with:
    wildcard_constraints:
        checkpoint=one_of_or_none(PLAN.checkpoint_slugs(in_container=True)),
    input:
        cli=cli_script("checkpoint"),
        snapshot=rules.snapshot.output.snapshot,
        calibration=calibration_of,  # the prepared folder quantize.py reads, where it reads one
    params:
        spec=container_spec("checkpoint", lambda w: PLAN.checkpoint_spec(w.model, w.checkpoint)),
    container:
        CONTAINER
    conda:
        no_conda
    resources:
        gpu=1,  # quantize.py calibrates on the GPU; convert_checkpoint.py loads the model onto it
        gpu_jobs=1,


use rule engine as trtllm_engine with:
    wildcard_constraints:
        variant=one_of_or_none(PLAN.engine_slugs(in_container=True)),
    params:
        spec=container_spec("engine", lambda w: PLAN.engine_spec(w.model, w.variant)),
    container:
        CONTAINER
    conda:
        no_conda
    resources:
        gpu=engine_gpus,  # build.workers GPUs build a split engine's ranks side by side
        gpu_jobs=1,


use rule trtllm_engine as trtllm_logits_engine with:
    wildcard_constraints:
        variant=one_of_or_none([v for _, v in PLAN.logits_engines()]),
    output:
        engine=directory(paths.LOGITS_ENGINE),
    params:
        # The timed engine's spec plus --gather_context_logits: same checkpoint, same settings.
        spec=container_spec("logits_engine", lambda w: PLAN.logits_engine_spec(w.model, w.variant),
                            paths.LOGITS_ENGINE),
    log:
        log_path("logits-engine", "{variant}"),


use rule bench as trtllm_bench with:
    wildcard_constraints:
        variant=one_of_or_none(PLAN.engine_slugs(in_container=True)),
    params:
        spec=container_spec("bench", lambda w: PLAN.runtime_spec(w.model, w.variant, "bench")),
    container:
        CONTAINER
    conda:
        no_conda


use rule samples as trtllm_samples with:
    wildcard_constraints:
        variant=one_of_or_none(PLAN.engine_slugs(in_container=True)),
    params:
        spec=container_spec("samples", lambda w: PLAN.runtime_spec(w.model, w.variant, "samples")),
    container:
        CONTAINER
    conda:
        no_conda


use rule quality as trtllm_quality with:
    wildcard_constraints:
        model=one_of_or_none(PLAN.quality_models),  # placeholder models: quality_not_applicable
        variant=one_of_or_none(PLAN.engine_slugs(in_container=True)),
    input:
        cli=cli_script("quality"),
        snapshot=rules.snapshot.output.snapshot,
        checkpoint=checkpoint_of,
        # Logits from the engine built for them; the samples (rule input) from the timed engine.
        engine=rules.trtllm_logits_engine.output.engine,
        samples=rules.samples.output.samples,
        reference=rules.reference.output.reference,
        reference_samples=reference_artifact(paths.SAMPLES),
    params:
        spec=container_spec("quality", lambda w: PLAN.quality_spec(w.model, w.variant), paths.LOGITS_ENGINE),
    threads: workflow.cores
    container:
        CONTAINER
    conda:
        no_conda
