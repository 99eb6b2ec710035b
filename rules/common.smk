# Config loading and validation, wildcard constraints and input functions. Logic lives in
# scripts/enginebench (plan.py), where it is unit-tested; this file only wires it in.
import re
import sys
from pathlib import Path

from snakemake_interface_executor_plugins.settings import DeploymentMethod

SCRIPTS = Path(workflow.basedir) / "scripts"
sys.path.insert(0, str(SCRIPTS))

from enginebench import paths
from enginebench.environment import put_interpreter_first_on_path
from enginebench.errors import EngineBenchError
from enginebench.figures import FIGURES, SERVE_FIGURE
from enginebench.plan import build_plan, spec_json, validate_config
from enginebench.stale import set_aside_stale_report

put_interpreter_first_on_path()  # rules call `python`: the one Snakemake runs under, venv activated or not

try:
    validate_config(config)  # JSON Schema (config/schema.yaml), fills defaults
    PLAN = build_plan(config)
    PLAN.check_host()  # e.g. FP8 variants on a GPU below compute capability 8.9
    _gpu = workflow.global_resources.get("gpu")  # --resources gpu=N (a profile's): a snakemake Resource
    PLAN.check_gpu_resource(getattr(_gpu, "value", _gpu))
    CONTAINER = PLAN.container() and f"docker://{PLAN.container()}"  # for the trtllm_* rules
except EngineBenchError as error:
    raise WorkflowError(f"enginebench: {error}") from None
for _model, _reason in PLAN.unfetchable.items():  # the gate fails the run on it, after the report
    print(f"enginebench: model {_model} is left out of this run: {_reason}", file=sys.stderr)

# The --apptainer-args when Snakemake starts containers (--sdm apptainer, profiles/trtllm), else None:
# the trtllm_* jobs log and show the `apptainer exec` they run in.
APPTAINER = (workflow.deployment_settings.apptainer_args
             if DeploymentMethod.APPTAINER in workflow.deployment_settings.deployment_method else None)


def _one_of(names):
    return "|".join(re.escape(n) for n in sorted(set(names)))


def one_of_or_none(names):
    """A wildcard constraint matching exactly these names (nothing at all when there are none)."""
    return _one_of(names) if names else "(?!)"


wildcard_constraints:
    model=_one_of(PLAN.models),
    variant=_one_of(v for _, v in PLAN.engines),
    checkpoint=_one_of(c for _, c in PLAN.checkpoints),


# Threads of the stages that time nothing (samples, reference, quality, predicted quality): half of
# the run's cores, so that two of them run side by side (their imports and Python overhead are single-
# threaded). The bench and the preflight take every core, so that nothing competes with their timings.
UNTIMED_THREADS = max(1, workflow.cores // 2)
# The reference takes every core: every quality job waits for it, and on a 2-core CPU without native
# bfloat16 it ran 3 min beside one 1-core job at most (the samples), the other core idle for 2 of them.
REFERENCE_THREADS = workflow.cores

CONDA_ENV = "../envs/enginebench.yaml"  # for `--sdm conda`; `make setup` uses envs/*.txt instead


def cli_script(name):
    """A CLI under scripts/. It is an input, so editing a stage's CLI re-runs that stage."""
    return str(SCRIPTS / f"{name}.py")


def gpus(wildcards):
    """resources: gpu for a runtime job: the variant's parallel.gpus, else 1 for engines that need an NVIDIA GPU."""
    return PLAN.gpus(wildcards.model, wildcards.variant)


def serve_gpus(wildcards):
    return PLAN.gpus(wildcards.model, wildcards.variant, stage="serve")


def engine_gpus(wildcards):
    return PLAN.gpus(wildcards.model, wildcards.variant, stage="engine")


def gpu_jobs(asked):
    """resources: gpu_jobs of a job that asks `asked` GPUs (a number or an input function): 1 where it asks any.
    A local run does not assign GPUs to jobs (each sees GPU 0 onwards), so on a host of several GPUs
    `--resources gpu=<GPUs> gpu_jobs=1` (scripts/gpu_session.sh) runs GPU jobs one at a time."""
    if callable(asked):
        return lambda wildcards: int(asked(wildcards) > 0)
    return int(asked > 0)


def log_path(stage, name):
    return paths.LOG.format(model="{model}", stage=stage, name=name)


def checkpoint_of(wildcards):
    """The (possibly shared) checkpoint folder an engine is built from."""
    ckpt = PLAN.engines[(wildcards.model, wildcards.variant)].checkpoint
    return paths.CHECKPOINT.format(model=wildcards.model, checkpoint=ckpt)


def calibration_of(wildcards):
    """The prepared calibration folder a TensorRT-LLM checkpoint's quantize.py reads, if it reads one and this
    run can run quantize.py (in the containers Snakemake starts, or with TensorRT-LLM here); elsewhere the
    checkpoint job only records that it was not built, and needs no data (the default CPU run)."""
    key = (wildcards.model, wildcards.checkpoint)
    if key in PLAN.prepared_calibrations() and (APPTAINER is not None or PLAN.checkpoint_runs_here(*key)):
        return [paths.CALIBRATION.format(model=wildcards.model, checkpoint=wildcards.checkpoint)]
    return []


def reference_artifact(pattern):
    """Input function: the model's reference engine's artifact named by `pattern` (engine, samples...)."""

    def artifact(wildcards):
        reference = PLAN.reference(wildcards.model)
        ckpt = PLAN.engines[(wildcards.model, reference)].checkpoint
        return pattern.format(model=wildcards.model, variant=reference, checkpoint=ckpt)

    return artifact


def serve_commands(spec):
    """The serve job's server and load generator commands as shell comment lines (enginebench.serve), every
    line commented. A param: editing their wording reruns the serve jobs, as a change of the spec does."""
    from enginebench.serve_commands import planned_commands

    server, load = planned_commands(spec)
    text = f"server: {server}\nload generator: {load}"
    return "".join(f"# {line}\n" for line in text.splitlines())


def eval_text_input(wildcards):
    """The configured eval text file, so that editing it re-scores the reference and re-runs the benches."""
    path = config["quality"]["eval_text"]
    return [path] if path else []


def engine_targets(pattern):
    return [pattern.format(model=m, variant=v) for m, v in PLAN.all_engines()]


def model_targets(pattern, model):
    return [pattern.format(model=model, variant=v) for m, v in PLAN.all_engines() if m == model]


def figure_names():
    """The figures of every model: the serving figure too where the engines are served (serve.enabled)."""
    return {**FIGURES, **(SERVE_FIGURE if PLAN.serves else {})}


def figure_targets():
    return [paths.FIGURE.format(model=m, figure=f) for m in PLAN.models_to_measure for f in figure_names()]


def container_spec(stage, spec_of, engine_pattern=paths.ENGINE):
    """params: a containerized job's spec (spec_of(wildcards)) plus what it runs: the command (quantize.py /
    convert_checkpoint.py, trtllm-build, the LLM API) and the container invocation Snakemake wraps it in
    (enginebench.plan). Its CLI prints that first to the job's log; `snakemake -n -p` shows it in --spec."""

    def spec(wildcards):
        runs = PLAN.container_invocation(stage, dict(wildcards.items()), engine_pattern, APPTAINER)
        return spec_json({**spec_of(wildcards), "invocation": runs})

    return spec


def no_conda(wildcards):
    """conda: for a job in the image: its packages only, never an environment of ours."""
    return None


def on_error():
    """A failed run leaves no report that looks current (enginebench.stale)."""
    if message := set_aside_stale_report(Path(".")):
        print(f"enginebench: {message}", file=sys.stderr)
