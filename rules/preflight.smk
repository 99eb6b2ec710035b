# Stage 0: the host record, once per host: CPU, RAM, free disk, GPUs with compute capability, and
# measured memory bandwidth (the roofline's numerator), and the all-reduce bandwidth among the GPUs of the
# config's widest split. It takes every core while it measures.


rule preflight:
    input:
        cli=cli_script("preflight"),
    output:
        preflight=report(paths.PREFLIGHT, category="Host", labels={"file": "preflight (JSON)"}),
    params:
        ranks=PLAN.widest_split(),
    threads: workflow.cores
    resources:
        gpu=PLAN.preflight_gpus(),  # under SLURM: the GPUs whose bandwidth and all-reduce it measures
        gpu_jobs=gpu_jobs(PLAN.preflight_gpus()),
    conda:
        CONDA_ENV
    log:
        "results/logs/preflight.log",
    shell:
        "python {input.cli:q} --threads {threads} --ranks {params.ranks} --out {output.preflight:q} > {log:q} 2>&1"
