# Stage 0: the host record, once per host: CPU, RAM, free disk, GPUs with compute capability, and
# measured memory bandwidth (the roofline's numerator). It takes every core while it measures.


rule preflight:
    input:
        cli=cli_script("preflight"),
    output:
        preflight=report(paths.PREFLIGHT, category="Host", labels={"file": "preflight (JSON)"}),
    threads: workflow.cores
    conda:
        CONDA_ENV
    log:
        "results/logs/preflight.log",
    shell:
        "python {input.cli:q} --threads {threads} --out {output.preflight:q} > {log:q} 2>&1"
