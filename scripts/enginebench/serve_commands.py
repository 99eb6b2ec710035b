"""The serve stage's commands as a dry run shows them (`snakemake -n -p`): the backend's server with
placeholders for what only the job knows, and GuideLLM's. Apart from enginebench.serve, so that building
the DAG imports no more than the backends."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .backends import get_backend
from .errors import EngineBenchError, StageUnavailable

REPO = Path(__file__).resolve().parents[2]


# serve.profile -> the GuideLLM profile that runs it: its steps' key in the config and in each step record, the
# profile's field that a step sets, and the steps in words
PROFILES = {
    "concurrent": {"config": "concurrency", "step": "concurrency", "field": "streams",
                   "column": "In flight", "words": "concurrent profile at {steps} in flight"},
    "poisson": {"config": "rates", "step": "rate", "field": "rate", "column": "Offered (requests/s)",
                "words": "Poisson profile at {steps} requests/s offered (exponential gaps between arrivals, "
                         "GuideLLM's fixed seed)"},
}


def profile(serve: dict) -> dict:
    """The serve settings' GuideLLM profile (PROFILES) with its configured steps as `steps`."""
    chosen = PROFILES[serve.get("profile", "concurrent")]
    return {**chosen, "steps": serve[chosen["config"]]}


def profile_text(serve: dict) -> str:
    """GuideLLM's profile and its steps, in words."""
    chosen = profile(serve)
    return chosen["words"].format(steps=", ".join(map(str, chosen["steps"])))


def step_load(step: dict) -> tuple[str, float]:
    """(the report's column, the value): what a step of a sweep set, requests in flight or requests/s offered."""
    chosen = next((p for p in PROFILES.values() if p["step"] in step), None)
    if chosen is None:
        raise EngineBenchError(f"a serving step sets none of {', '.join(p['step'] for p in PROFILES.values())}: "
                               "not a record of the serve stage")
    return chosen["column"], step[chosen["step"]]


def guidellm_command(scenario_file, python: str = sys.executable) -> list[str]:
    return [python, "-m", "guidellm", "run", "--scenario", str(scenario_file), "--disable-console-interactive"]


def shown(arg: str) -> str:
    """A path of the checkout by its path in the checkout, one of this Python's environment as <env>/..., this
    interpreter as `python` (bin/python or bin/python3, by how Snakemake was started): the same text in every
    clone (the commands are a param: another text reruns the job)."""
    if arg == sys.executable:
        return "python"
    path = Path(arg)
    if not path.is_absolute():
        return arg
    if path.is_relative_to(REPO):
        return str(path.relative_to(REPO))
    prefix = Path(sys.prefix)
    return f"<env>/{path.relative_to(prefix)}" if path.is_relative_to(prefix) else arg


def planned_commands(spec: dict) -> tuple[str, str]:
    """(server, load generator): the commands a serve job runs, with placeholders for what only the job
    knows (the engine's file or folder, the free port, the threads, what the host offers: the backend's
    server_placeholders), for the dry run to show."""
    settings = spec["settings"]
    backend = get_backend(spec["backend"])
    try:
        cmd = backend.server_command(backend.served_placeholder, settings, port="<free port>",
                                     slots=spec["serve"]["slots"], threads="<threads>",
                                     **backend.server_placeholders(settings))
    except StageUnavailable as why:
        server = f"none: {why}"
    else:
        server = shlex.join(map(shown, cmd))
    serve = spec["serve"]
    load = (f"{shlex.join(guidellm_command('<scenario.json>', python='python'))}  (its {profile_text(serve)}, "
            f"{serve['requests']} requests each after "
            f"{serve['warmup_requests']} warm-up, prompts of {serve['prompt_tokens']['min']}-"
            f"{serve['prompt_tokens']['max']} tokens, {serve['output_tokens']} new tokens; "
            f"{serve['repetitions']} sweep(s))")
    return server, load
