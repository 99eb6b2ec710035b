# Stage 5b (serve.enabled): each engine behind its own OpenAI-compatible server, its answers checked
# against its samples, its load swept by GuideLLM. It times the server, so it takes every core. The
# shell's comment lines show the server's and GuideLLM's commands in a dry run (`snakemake -n -p`),
# with placeholders for what only the job knows.


rule serve:
    wildcard_constraints:
        variant=one_of_or_none([v for _, v in PLAN.served_engines()]),  # a host job, TensorRT-LLM's too
    input:
        cli=cli_script("serve"),
        snapshot=rules.snapshot.output.snapshot,
        checkpoint=checkpoint_of,
        engine=rules.engine.output.engine,
        samples=rules.samples.output.samples,  # the answers the server's must equal
        eval_text=eval_text_input,  # the load's prompts are cut from it
    output:
        serve=report(paths.SERVE, category="Serve", subcategory="{model}",
                     labels={"model": "{model}", "engine": "{variant}", "file": "serve (JSON)"}),
    params:
        spec=lambda w: spec_json(PLAN.serve_spec(w.model, w.variant)),
        commands=lambda w: serve_commands(PLAN.serve_spec(w.model, w.variant)),
    threads: workflow.cores
    resources:
        gpu=serve_gpus,
        gpu_jobs=gpu_jobs(serve_gpus),
    conda:
        CONDA_ENV
    log:
        log_path("serve", "{variant}"),
    shell:
        "{params.commands}"
        "python {input.cli:q} --spec {params.spec:q} --snapshot {input.snapshot:q}"
        " --checkpoint {input.checkpoint:q} --engine {input.engine:q} --samples {input.samples:q}"
        " --threads {threads} --out {output.serve:q} > {log:q} 2>&1"
