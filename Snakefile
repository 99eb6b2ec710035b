# enginebench: Hugging Face snapshots -> checkpoints -> engines -> bench + samples -> report.
#
# Results path scheme (relative to the working directory; see scripts/enginebench/paths.py):
#   results/{model}/snapshot/                    model files + manifest.json
#   results/{model}/checkpoints/{checkpoint}/    backend checkpoint + manifest.json (shared by engines)
#   results/{model}/engines/{variant}/           engine files + manifest.json
#   results/{model}/bench/{variant}.json         load time, tokens/s, memory, environment
#   results/{model}/samples/{variant}.json       greedy answers to the configured prompts
#   results/report.md                            the comparison report
#   results/logs/{model}/{stage}/{name}.log      one log per job
#
# Usage: snakemake --cores 2 results/report.md      (see README.md)

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/snapshot.smk"
include: "rules/checkpoint.smk"
include: "rules/engine.smk"
include: "rules/bench.smk"
include: "rules/samples.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        rules.report.output.report,
