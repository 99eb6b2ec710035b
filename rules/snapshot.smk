# Stage 1: download/import a model snapshot. Separate from every build, so rebuilding an engine
# never re-downloads.


rule snapshot:
    input:
        cli=cli_script("snapshot"),
    output:
        snapshot=directory(paths.SNAPSHOT),
    params:
        # The source (hub repo + pinned revision, local folder, or package) defines the snapshot.
        spec=lambda w: spec_json(PLAN.snapshot_spec(w.model)),
    threads: lambda wildcards: workflow.cores if PLAN.speed_only(wildcards.model) else 1  # placeholder weights: all cores
    conda:
        CONDA_ENV
    log:
        log_path("snapshot", "snapshot"),
    shell:
        "python {input.cli:q} --spec {params.spec:q} --threads {threads} --out {output.snapshot:q} > {log:q} 2>&1"
