"""The results path scheme, shared by the Snakemake rules and the report (relative to the workdir).

    results/{model}/snapshot/                     model files + manifest.json
    results/{model}/checkpoints/{checkpoint}/     backend checkpoint + manifest.json (shared by engines)
    results/{model}/engines/{variant}/            engine files + manifest.json
    results/{model}/bench/{variant}.json          load time, tokens/s, memory, environment
    results/{model}/samples/{variant}.json        greedy answers to the prompts
    results/report.md                             the comparison report
    results/logs/{model}/{stage}/{name}.log       one log per job
"""

SNAPSHOT = "results/{model}/snapshot"
CHECKPOINT = "results/{model}/checkpoints/{checkpoint}"
ENGINE = "results/{model}/engines/{variant}"
BENCH = "results/{model}/bench/{variant}.json"
SAMPLES = "results/{model}/samples/{variant}.json"
REPORT = "results/report.md"
LOG = "results/logs/{model}/{stage}/{name}.log"
MANIFEST = "manifest.json"
