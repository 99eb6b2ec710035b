# Stage 4: throughput benchmark. It takes every core of the run (threads), so no other job
# competes with the timings.


rule bench:
    wildcard_constraints:
        variant=one_of_or_none(PLAN.engine_slugs(in_container=False)),  # trtllm_* in rules/trtllm.smk
    input:
        cli=cli_script("bench"),
        snapshot=rules.snapshot.output.snapshot,
        checkpoint=checkpoint_of,
        engine=rules.engine.output.engine,
        eval_text=eval_text_input,  # the context of the context-depth runs
    output:
        bench=report(paths.BENCH, category="Bench", subcategory="{model}",
                     labels={"model": "{model}", "engine": "{variant}", "file": "bench (JSON)"}),
    params:
        # Engine spec + prompts + bench settings: changing the prompt set re-measures every engine.
        spec=lambda w: spec_json(PLAN.runtime_spec(w.model, w.variant, "bench")),
    threads: workflow.cores
    resources:
        gpu=gpus,
        gpu_jobs=gpu_jobs(gpus),
    conda:
        CONDA_ENV
    log:
        log_path("bench", "{variant}"),
    shell:
        "python {input.cli:q} --spec {params.spec:q} --snapshot {input.snapshot:q}"
        " --checkpoint {input.checkpoint:q} --engine {input.engine:q} --threads {threads}"
        " --out {output.bench:q} > {log:q} 2>&1"
