"""The results path scheme, shared by the Snakemake rules and the report (relative to the workdir).

    results/host/preflight.json                   this host: CPU, RAM, disk, GPUs, memory bandwidth
    results/{model}/snapshot/                     model files + manifest.json
    results/{model}/checkpoints/{checkpoint}/     backend checkpoint + manifest.json (shared by engines)
    results/{model}/calibration/{checkpoint}/     TensorRT-LLM: quantize.py's calibration data, prepared offline
    results/{model}/engines/{variant}/            engine files + manifest.json
    results/{model}/logits-engines/{variant}/     the quality stage's engine, where the timed one returns no logits
    results/{model}/bench/{variant}.json          load time, tokens/s, memory, environment
    results/{model}/samples/{variant}.json        greedy answers to the prompts
    results/{model}/serve/{variant}.json          the engine behind its server: answers checked, load swept (serve)
    results/{model}/reference/logprobs.json       reference engine's next-token distributions on the eval text
    results/{model}/quality/{variant}.json        quality metrics against the reference
    results/{model}/predicted/{variant}.json      the same for the engine's stand-in (ModelOpt fake-quant)
    results/{model}/history/                      one immutable record per build and bench run
    results/{model}/figures/{figure}.png          the report's plots
    results/report.md                             the comparison report
    results/quality-gate.json                     every engine's verdict (fails the run if quality.fail_on_gate)
    results/logs/{model}/{stage}/{name}.log       one log per job
"""

PREFLIGHT = "results/host/preflight.json"
SNAPSHOT = "results/{model}/snapshot"
CHECKPOINT = "results/{model}/checkpoints/{checkpoint}"
CALIBRATION = "results/{model}/calibration/{checkpoint}"
ENGINE = "results/{model}/engines/{variant}"
LOGITS_ENGINE = "results/{model}/logits-engines/{variant}"
BENCH = "results/{model}/bench/{variant}.json"
SAMPLES = "results/{model}/samples/{variant}.json"
SERVE = "results/{model}/serve/{variant}.json"
REFERENCE = "results/{model}/reference/logprobs.json"
QUALITY = "results/{model}/quality/{variant}.json"
PREDICTED = "results/{model}/predicted/{variant}.json"
FIGURE = "results/{model}/figures/{figure}.png"
REPORT = "results/report.md"
GATE = "results/quality-gate.json"
LOG = "results/logs/{model}/{stage}/{name}.log"
MANIFEST = "manifest.json"
