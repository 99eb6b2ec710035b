# enginebench: Hugging Face snapshots -> checkpoints -> engines -> bench + samples + quality -> report -> gate.
#
# Results path scheme (relative to the working directory; see scripts/enginebench/paths.py):
#   results/host/preflight.json                  this host: CPU, RAM, disk, GPUs, memory bandwidth
#   results/{model}/snapshot/                    model files + manifest.json
#   results/{model}/checkpoints/{checkpoint}/    backend checkpoint + manifest.json (shared by engines)
#   results/{model}/calibration/{checkpoint}/    TensorRT-LLM: quantize.py's calibration data, prepared offline
#   results/{model}/engines/{variant}/           engine files + manifest.json
#   results/{model}/logits-engines/{variant}/    TensorRT-LLM: the same engine built with context logits (quality)
#   results/{model}/bench/{variant}.json         load time, tokens/s, memory, environment
#   results/{model}/samples/{variant}.json       greedy answers to the configured prompts
#   results/{model}/reference/logprobs.json      reference engine's next-token distributions on the eval text
#   results/{model}/quality/{variant}.json       quality metrics against the reference (verdicts: report, gate)
#   results/{model}/predicted/{variant}.json     the same for a TensorRT-LLM variant's ModelOpt fake-quant stand-in
#   results/{model}/history/                     one immutable record per build and bench run
#   results/{model}/figures/{figure}.png         the report's plots (throughput, batch sweep, size vs speed)
#   results/report.md                            the comparison report
#   results/quality-gate.json                    all verdicts; fails the run if quality.fail_on_gate is on
#   results/logs/{model}/{stage}/{name}.log      one log per job
#
# Usage: snakemake --cores 2 results/report.md      (see README.md)

from snakemake.utils import min_version

min_version("9.0")


# The default config, unless --configfile names another: Snakemake would otherwise merge the two
# (the default's models would join every other config's).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"



include: "rules/common.smk"
include: "rules/preflight.smk"
include: "rules/snapshot.smk"
include: "rules/checkpoint.smk"
include: "rules/engine.smk"
include: "rules/bench.smk"
include: "rules/samples.smk"
include: "rules/serve.smk"
include: "rules/quality.smk"
include: "rules/trtllm.smk"
include: "rules/figures.smk"
include: "rules/report.smk"
include: "rules/gate.smk"


rule all:
    default_target: True
    input:
        rules.report.output.report,
        rules.gate.output.gate,


onerror:
    on_error()
