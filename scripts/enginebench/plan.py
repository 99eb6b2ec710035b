"""Turn a validated config into the artifacts to build: snapshots, shared checkpoints and engines.

The Snakemake rules ask this module for every wildcard value and for the JSON spec of each artifact
(passed through `params:`), so that what defines an artifact lives in one place and is tested here.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import paths
from .backends import get_backend
from .backends.base import parallel_gpus
from .errors import EngineBenchError
from .snapshot import fetch_problem

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


def load_config(path: Path) -> dict:
    """Read a YAML config, fill defaults and validate it against config/schema.yaml."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise EngineBenchError(f"config file not found: {path}") from error
    except yaml.YAMLError as error:
        raise EngineBenchError(f"{path}: not valid YAML: {error}") from error
    validate_config(config)
    return config


def validate_config(config: dict) -> None:
    """Validate against the JSON Schema, filling its defaults, with a message naming the key. jsonschema
    directly (Snakemake's `validate` does the same, and the default filling is jsonschema's FAQ recipe):
    planning code also runs where Snakemake is not importable, e.g. the container's parity tests."""
    error = next(_default_filling_validator()(_schema()).iter_errors(config), None)  # the first, as .validate
    if error is not None:
        raise EngineBenchError(schema_error_line(error))


@functools.cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.cache
def _default_filling_validator():
    from jsonschema import Draft202012Validator, validators

    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def properties(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))  # not shared
        yield from check_properties(validator, properties, instance, schema)

    return validators.extend(Draft202012Validator, {"properties": properties})


def schema_error_line(error) -> str:
    """One line out of a jsonschema ValidationError: the failing key path and what is wrong."""
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    # a value outside a key's choices: the key's description says why they are the choices
    why = error.schema.get("description") if error.validator == "enum" else None
    return f"config key {where}: {error.message}" + (f" ({why})" if why else "")


def spec_json(spec: dict) -> str:
    """Canonical JSON for a `params:` value: stable key order, so equal specs compare equal."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def with_availability(stage: str, spec: dict) -> dict:
    """`spec`, plus why its backend cannot run `stage` here (e.g. a library not installed) where it
    cannot: a record of unavailability then lasts only as long as its cause, since the spec goes
    through `params:` and changes back once the library is importable, which reruns the job. Where
    the backend runs the spec is unchanged, so existing artifacts stay current. Containerized
    backends are left out: the host Snakemake runs on does not say what their container holds."""
    reason = _unavailable(spec["backend"], stage, spec_json(spec["settings"]))
    return {**spec, "unavailable_when_planned": reason} if reason else spec


@functools.cache  # once per planning process: a metadata look-up takes ~1 ms, and specs are asked for often
def _unavailable(backend_name: str, stage: str, settings: str) -> str | None:
    backend = get_backend(backend_name)
    return None if backend.runs_in_container else backend.availability(stage, json.loads(settings))


@dataclass(frozen=True)
class Engine:
    model: str
    variant: str
    backend: str
    settings: dict
    checkpoint: str


@dataclass
class Plan:
    config: dict
    engines: dict[tuple[str, str], Engine] = field(default_factory=dict)
    checkpoints: dict[tuple[str, str], dict] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)
    # Models whose snapshot cannot be imported here, with the reason (snapshot.fetch_problem): none
    # of their jobs is planned and the report lists them, so one model cannot take the others' report
    # with it. Planned again, from the snapshot on, once the reason is gone.
    unfetchable: dict[str, str] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return list(self.config["models"])

    @property
    def models_to_measure(self) -> list[str]:
        return [m for m in self.models if m not in self.unfetchable]

    def variants(self, model: str) -> list[str]:
        return list(self.config["models"][model]["variants"])

    def snapshot_spec(self, model: str) -> dict:
        cfg = self.config["models"][model]
        return {"source": cfg["source"], "trust_remote_code": cfg["trust_remote_code"]}

    def checkpoint_spec(self, model: str, checkpoint: str) -> dict:
        return with_availability("checkpoint", self.checkpoints[(model, checkpoint)])

    def prepared_calibrations(self) -> list[tuple[str, str]]:
        """(model, checkpoint) of the checkpoints whose calibration data the pipeline prepares."""
        return [key for key, spec in self.checkpoints.items()
                if key[0] in self.models_to_measure and spec["settings"].get("calibration", {}).get("prepared")]

    def checkpoint_runs_here(self, model: str, checkpoint: str) -> bool:
        """Whether the checkpoint's backend can run on this host (not: only in a container)."""
        spec = self.checkpoints[(model, checkpoint)]
        return get_backend(spec["backend"]).availability("checkpoint", spec["settings"]) is None

    def calibration_spec(self, model: str, checkpoint: str) -> dict:
        """What defines a prepared calibration folder: the text, the samples' count, length and order."""
        from .modelopt_quant import calibration_size

        settings = self.checkpoints[(model, checkpoint)]["settings"]
        calib = settings["calibration"]
        return {"text": calib["text"], "size": calibration_size(settings["qformat"], calib["size"]),
                "max_seq_length": calib["max_seq_length"],
                "seed": calib["seed"], "trust_remote_code": self.config["models"][model]["trust_remote_code"]}

    def engine_spec(self, model: str, variant: str) -> dict:
        engine = self.engines[(model, variant)]
        spec = {"backend": engine.backend, "settings": engine.settings, "checkpoint": engine.checkpoint}
        host = get_backend(engine.backend).host_identity()
        return with_availability("engine", {**spec, "host": host} if host else spec)

    def logits_engine_spec(self, model: str, variant: str) -> dict:
        """The quality stage's engine where the backend builds one apart from the timed engine: the
        same checkpoint and settings, built to return context logits."""
        spec = self.engine_spec(model, variant)
        settings = {**spec["settings"], "build": {**spec["settings"]["build"], "gather_context_logits": True}}
        return {**spec, "settings": settings, "purpose": "logits for the quality stage"}

    def container_invocation(self, stage: str, wildcards: dict, engine_pattern: str = paths.ENGINE,
                             apptainer: str | None = None) -> str:
        """What a containerized job runs, for its log and `snakemake -n -p`: the tool command (stage 1
        converter, trtllm-build, the LLM API) and, where Snakemake starts the container (apptainer:
        its --apptainer-args), the `apptainer exec` it is wrapped in. Made from the config alone (no
        file is read), so that it is the same before and after the upstream jobs ran."""
        model, variant, checkpoint = wildcards["model"], wildcards.get("variant"), wildcards.get("checkpoint")
        if stage == "checkpoint":
            ckpt = self.checkpoints[(model, checkpoint)]
            backend, settings = get_backend(ckpt["backend"]), ckpt["settings"]
        else:
            engine = self.engines[(model, variant)]
            backend = get_backend(engine.backend)
            settings = (self.logits_engine_spec(model, variant) if stage == "logits_engine"
                        else self.engine_spec(model, variant))["settings"]
            checkpoint = engine.checkpoint
        snapshot = Path(paths.SNAPSHOT.format(model=model))
        ckpt_path = Path(paths.CHECKPOINT.format(model=model, checkpoint=checkpoint))
        engine_path = Path(engine_pattern.format(model=model, variant=variant)) if variant else None
        planned = {"checkpoint": "checkpoint", "engine": "engine", "logits_engine": "engine"}.get(stage, "runtime")
        command = backend.container_command(planned, snapshot, ckpt_path, engine_path, settings)
        if apptainer is None:
            return f"runs: {command}"
        return f"runs in: apptainer exec {apptainer} docker://{settings['container']}; command: {command}"

    def logits_engines(self) -> list[tuple[str, str]]:
        return [key for key in self.all_engines() if get_backend(self.engines[key].backend).separate_logits_engine]

    def gpus(self, model: str, variant: str, stage: str = "bench") -> int:
        """GPUs a job of the engine's `stage` asks (`resources: gpu`): the backend's say (Backend.gpus)."""
        engine = self.engines[(model, variant)]
        return get_backend(engine.backend).gpus(engine.settings, stage)

    def check_gpu_resource(self, limit: int | None) -> None:
        """Stop before any job where `--resources gpu=<limit>` (profiles/trtllm sets 1) is below what the
        widest job asks: Snakemake would refuse that job only when its turn comes, after the others ran."""
        asked = {key: max(get_backend(e.backend).gpus(e.settings, stage) for stage in ("engine", "bench", "serve"))
                 for key, e in self.engines.items()}
        (model, variant), most = max(asked.items(), key=lambda item: item[1], default=((None, None), 0))
        if limit is not None and most > limit:
            raise EngineBenchError(f"models.{model}.variants.{variant} runs on {most} GPUs, but --resources "
                                   f"gpu={limit} lets a job use {limit}: raise it to this host's GPU count "
                                   f"(at least --resources gpu={most})")

    def preflight_gpus(self) -> int:
        """GPUs the preflight job asks: the most a bench asks (whose bandwidth and interconnect it measures)."""
        return max((get_backend(e.backend).gpus(e.settings, "bench") for e in self.engines.values()), default=0)

    def widest_split(self) -> int:
        """The most GPUs one engine spans (1 where none is split): the preflight measures their interconnect."""
        return max((parallel_gpus(e.settings) for e in self.engines.values()), default=1)

    def _in_container(self, engine: Engine) -> bool:
        return get_backend(engine.backend).runs_in_container

    def engine_slugs(self, in_container: bool) -> list[str]:
        """Variant slugs (of any model) whose stages do / do not run in a container."""
        return sorted({e.variant for e in self.engines.values() if self._in_container(e) == in_container})

    def checkpoint_slugs(self, in_container: bool) -> list[str]:
        return sorted({e.checkpoint for e in self.engines.values() if self._in_container(e) == in_container})

    def container(self) -> str | None:
        """The one container image of the containerized stages (a rule's container: is one string)."""
        tags = sorted({e.settings["container"] for e in self.engines.values() if self._in_container(e)})
        if len(tags) > 1:
            raise EngineBenchError(f"variants name {len(tags)} different containers ({', '.join(tags)}); "
                                   "one run uses one: split the config")
        return tags[0] if tags else None

    def check_host(self) -> None:
        """Stop before any job when this host can run a backend but not a variant's settings, or has GPUs
        but fewer than a variant's parallel.gpus (a host without any GPU records those engines as not run
        here: a plan made on a SLURM submit host or a laptop still runs elsewhere)."""
        asked = {key: n for key, e in self.engines.items() if (n := parallel_gpus(e.settings)) > 1}
        # Not inside a SLURM job: its node re-reads the workflow and may show only the job's own GPUs
        # (ConstrainDevices); each runtime job checks its own need (stages.parallel_problem)
        if asked and "SLURM_JOB_ID" not in os.environ:
            from .environment import gpus

            have = len(gpus())
            for (model, variant), n in asked.items():
                if 0 < have < n:
                    raise EngineBenchError(f"models.{model}.variants.{variant}.parallel.gpus asks for {n} GPUs; this "
                                           f"host has {have} (nvidia-smi): lower it or run on a larger host")
        for engine in self.engines.values():
            try:
                get_backend(engine.backend).check_host(engine.settings)
            except EngineBenchError as error:
                raise EngineBenchError(f"models.{engine.model}.variants.{engine.variant}: {error}") from error

    def describe(self, model: str, variant: str) -> dict:
        engine = self.engines[(model, variant)]
        return get_backend(engine.backend).describe(engine.settings)

    def _loaded_engine_spec(self, model: str, variant: str) -> dict:
        cfg = self.config["models"][model]
        return {**self.engine_spec(model, variant), "trust_remote_code": cfg["trust_remote_code"],
                "chat_template": cfg["chat_template"]}

    def runtime_spec(self, model: str, variant: str, stage: str) -> dict:
        """What defines a bench or samples result: the engine, the prompts and the stage's settings."""
        spec = {**self._loaded_engine_spec(model, variant), "prompts": self.config["prompts"],
                stage: self.config[stage]}
        if stage == "bench":  # the context-depth runs read their context from the eval text
            spec["eval_text"] = self.config["quality"]["eval_text"]
        return spec

    @property
    def serves(self) -> bool:
        return self.config["serve"]["enabled"]

    def served_engines(self) -> list[tuple[str, str]]:
        """The engines the serve stage puts behind their server (serve.enabled, those of serve.engines
        where it names some)."""
        if not self.serves:
            return []
        named = self.config["serve"]["engines"]
        return [key for key in self.all_engines() if named is None or key[1] in named]

    def serve_spec(self, model: str, variant: str) -> dict:
        """What defines a serve result: the engine, the sample prompts and length (the answers it checks)
        and the serve settings and eval text (the load)."""
        # which to serve is not how; of the profile's keys only those its steps read (profile_keys)
        serve = {k: v for k, v in self.config["serve"].items() if k not in ("engines", *PROFILE_KEYS)}
        serve.update(profile_keys(self.config["serve"]))
        return {**self.runtime_spec(model, variant, "samples"), "serve": serve,
                "eval_text": self.config["quality"]["eval_text"], "speed_only": self.speed_only(model)}

    def reference(self, model: str) -> str | None:
        return self.references[model]

    def speed_only(self, model: str) -> str | None:
        """Why a model's engines get no quality verdict (placeholder weights), else None."""
        source = self.config["models"][model]["source"]
        if source["kind"] != "placeholder":
            return None
        return (f"placeholder weights (seed {source['seed']}) of {source.get('config') or source.get('repo_id')}'s "
                "architecture: speed and memory only, no quality")

    @property
    def speed_only_models(self) -> list[str]:
        return [m for m in self.models_to_measure if self.speed_only(m)]

    @property
    def quality_models(self) -> list[str]:
        """Models whose engines are measured against a reference (every one but placeholders)."""
        return [m for m in self.models_to_measure if not self.speed_only(m)]

    def not_applicable_spec(self, model: str, variant: str) -> dict:
        """The quality record of a speed-only model's engine: why it has no verdict."""
        return {"variant": variant, "reason": self.speed_only(model)}

    def eval_settings(self) -> dict:
        """What defines the eval windows and the reference's stored distributions (not the gate)."""
        return {k: v for k, v in self.config["quality"].items() if k not in ("gate", "fail_on_gate")}

    def reference_spec(self, model: str) -> dict:
        """What defines a model's reference distributions: the reference engine and the eval settings."""
        return {**self._loaded_engine_spec(model, self.reference(model)), "variant": self.reference(model),
                "quality": self.eval_settings()}

    def quality_spec(self, model: str, variant: str) -> dict:
        """What defines an engine's quality figures: its engine, its reference and the eval settings.
        The reference's distributions and both engines' samples are rule inputs. The gate thresholds
        are not part of it: verdicts are applied to the figures by the report and the gate, so tuning
        a threshold re-runs no engine."""
        return {**self._loaded_engine_spec(model, variant), "variant": variant, "reference": self.reference(model),
                "quality": self.eval_settings()}

    def predicted_by(self, model: str, variant: str) -> str | None:
        """What predicts this engine's quality before it is built (e.g. ModelOpt fake-quant), or None;
        never for a placeholder model, whose quality means nothing."""
        if self.speed_only(model):
            return None
        engine = self.engines[(model, variant)]
        return get_backend(engine.backend).predicts(engine.settings)

    def predicted_engines(self) -> list[tuple[str, str]]:
        """Engines whose backend predicts their quality before they are built (ModelOpt fake-quant)."""
        return [key for key in self.all_engines() if self.predicted_by(*key)]

    def predicted_spec(self, model: str, variant: str) -> dict:
        """A predicted quality result: the quality spec plus what its own samples need. The stand-in is
        made from the checkpoint settings alone (quantization, calibration), so engine build options
        and the host's GPU are left out: changing them re-runs no prediction."""
        engine = self.engines[(model, variant)]
        spec = {**self.quality_spec(model, variant), "prompts": self.config["prompts"],
                "samples": self.config["samples"],
                "settings": get_backend(engine.backend).checkpoint_settings(engine.settings)}
        spec.pop("host", None)
        return spec

    def report_layout(self) -> dict:
        """What the report needs besides the result files. Lists, not dicts: spec_json sorts keys,
        and the report keeps the config's order with the baseline first."""
        models = []
        for model, cfg in self.config["models"].items():
            if model in self.unfetchable:
                models.append({"slug": model, "unfetchable": self.unfetchable[model]})
                continue
            models.append({
                "slug": model,
                "baseline": cfg["baseline"],
                "reference": self.reference(model),
                "speed_only": self.speed_only(model),
                "variants": [{"slug": v, **self.engine_spec(model, v), "describe": self.describe(model, v),
                              "predicted_by": self.predicted_by(model, v),
                              "served": (model, v) in self.served_engines()} for v in self.report_order(model)],
            })
        return {"title": self.config["report"]["title"], "models": models, "prompts": self.config["prompts"],
                "bench": self.config["bench"], "samples": self.config["samples"], "quality": self.config["quality"],
                "serve": self.config["serve"]}

    def report_order(self, model: str) -> list[str]:
        """The model's variants as the report lists them: the baseline first, then the config's order."""
        cfg = self.config["models"][model]
        return [cfg["baseline"]] + [v for v in cfg["variants"] if v != cfg["baseline"]]

    def figures_layout(self, model: str) -> dict:
        """What a model's figures read besides its result files: engine order (and which are served), gate
        thresholds, the serving SLO."""
        served = self.served_engines()
        return {"slug": model, "gate": self.config["quality"]["gate"],
                "variants": [{"slug": v, "served": (model, v) in served} for v in self.report_order(model)],
                "slo": self.config["serve"]["slo"] if self.serves else None}

    def gate_spec(self) -> dict:
        """What the gate reads: every engine (in report_layout's shape) and the thresholds."""
        return {"models": [{"slug": model, "variants": [{"slug": v, "predicted_by": self.predicted_by(model, v)}
                                                        for v in cfg["variants"]]}
                           for model, cfg in self.config["models"].items() if model not in self.unfetchable],
                "unfetchable": self.unfetchable, "quality": {"gate": self.config["quality"]["gate"]}}

    def all_checkpoints(self) -> list[tuple[str, str]]:
        """Every checkpoint to build (of the models whose snapshot can be imported)."""
        return [key for key in self.checkpoints if key[0] not in self.unfetchable]

    def all_engines(self) -> list[tuple[str, str]]:
        """Every engine to build and measure (of the models whose snapshot can be imported)."""
        return [key for key in self.engines if key[0] not in self.unfetchable]


def build_plan(config: dict) -> Plan:
    """Resolve every variant to its backend and the (possibly shared) checkpoint it is built from."""
    plan = Plan(config)
    # Single-stream is always measured: the roofline and the latency headlines read it.
    sizes = config["bench"]["batch_sizes"] = sorted(set(config["bench"]["batch_sizes"]) | {1})
    for model, cfg in config["models"].items():
        if cfg["baseline"] not in cfg["variants"]:
            raise EngineBenchError(
                f"config key models.{model}.baseline: {cfg['baseline']!r} is not one of its variants "
                f"({', '.join(cfg['variants'])})"
            )
        for variant, vcfg in cfg["variants"].items():
            backend = get_backend(vcfg["backend"])
            settings = {k: v for k, v in vcfg.items() if k != "backend"}
            if (problem := backend.settings_error(settings)) is not None:
                raise EngineBenchError(f"config key models.{model}.variants.{variant}: {problem}")
            ckpt_settings = backend.checkpoint_settings(settings)
            ckpt = backend.checkpoint_slug(ckpt_settings)
            calibration = ckpt_settings.get("calibration")
            if calibration is not None and calibration["dataset"] is None:  # prepared offline (rule calibration)
                dataset = paths.CALIBRATION.format(model=model, checkpoint=ckpt)
                ckpt_settings = {**ckpt_settings, "calibration": {**calibration, "dataset": dataset, "prepared": True}}
            spec = {"backend": backend.name, "settings": ckpt_settings}
            if plan.checkpoints.setdefault((model, ckpt), spec) != spec:
                raise EngineBenchError(
                    f"models.{model}: checkpoint slug {ckpt!r} names two different checkpoints "
                    f"({plan.checkpoints[(model, ckpt)]} and {spec}); this is a bug in backend "
                    f"{backend.name!r}"
                )
            if (limit := backend.batch_limit(settings)) is not None and max(sizes) > limit[0]:
                raise EngineBenchError(f"config key bench.batch_sizes: batch size {max(sizes)} exceeds {limit[0]}, "
                                       f"the largest that models.{model}.variants.{variant} takes ({limit[1]})")
            plan.engines[(model, variant)] = Engine(model, variant, backend.name, settings, ckpt)
        plan.references[model] = resolve_reference(model, cfg)
        imported = (Path(paths.SNAPSHOT.format(model=model)) / paths.MANIFEST).exists()  # needs no fetch
        if not imported and (problem := fetch_problem(cfg["source"])) is not None:
            plan.unfetchable[model] = problem
    check_serve(plan)
    return plan


PROFILE_KEYS = ("profile", "concurrency", "rates")


def profile_keys(serve: dict) -> dict:
    """The sweep's profile keys that its steps read: `concurrency` for the concurrent profile (alone, so that
    records made before there were profiles keep their spec), `profile` and `rates` for poisson."""
    if serve["profile"] == "concurrent":
        return {"concurrency": serve["concurrency"]}
    return {"profile": serve["profile"], "rates": serve["rates"]}


def check_serve(plan: Plan) -> None:
    """serve.*: a prompt range that is one, the steps of the chosen profile, engines named that exist, and a
    server context that holds each slot's longest request."""
    serve = plan.config["serve"]
    if serve["profile"] == "poisson" and serve["rates"] is None:
        raise EngineBenchError("config key serve.rates: the poisson profile offers these requests/s, one step "
                               "each (e.g. [1, 2, 4]); none given")
    if serve["profile"] == "concurrent" and serve["rates"] is not None:
        raise EngineBenchError("config key serve.rates: set, but serve.profile is concurrent, whose steps are "
                               "serve.concurrency (profile: poisson to offer request rates)")
    low, high = serve["prompt_tokens"]["min"], serve["prompt_tokens"]["max"]
    if high < low:
        raise EngineBenchError(f"config key serve.prompt_tokens: max {high} is below min {low}")
    variants = {v for _, v in plan.engines}
    if serve["engines"] is not None and (unknown := [v for v in serve["engines"] if v not in variants]):
        raise EngineBenchError(f"config key serve.engines: {', '.join(unknown)} is no variant of any model "
                               f"(variants: {', '.join(sorted(variants))})")
    need = high + serve["output_tokens"] + 64  # the chat template's own tokens, at most
    for model, variant in plan.served_engines():
        n_ctx = plan.engines[(model, variant)].settings.get("n_ctx")
        if n_ctx is not None and n_ctx // serve["slots"] < need:
            raise EngineBenchError(
                f"config key serve.slots: {serve['slots']} slots share models.{model}.variants.{variant}.n_ctx "
                f"{n_ctx}, {n_ctx // serve['slots']} tokens each, fewer than a request may need ({high} prompt + "
                f"{serve['output_tokens']} output + 64 for the chat template): fewer slots or a larger n_ctx")


def resolve_reference(model: str, cfg: dict) -> str | None:
    """The configured reference variant, or the torch variant at a packaged snapshot's precision; None
    for a placeholder model, whose engines are not compared with anything."""
    variants = cfg["variants"]
    if cfg["source"]["kind"] == "placeholder":
        if "reference" in cfg:
            raise EngineBenchError(f"config key models.{model}.reference: a placeholder model has no reference (its "
                                   "engines get no quality stage): remove the key")
        return None
    if "reference" in cfg:
        reference = cfg["reference"]
        if reference not in variants:
            raise EngineBenchError(f"config key models.{model}.reference: {reference!r} is not one of its variants "
                                   f"({', '.join(variants)})")
        backend = get_backend(variants[reference]["backend"])
        if not backend.exposes_logits:
            raise EngineBenchError(f"config key models.{model}.reference: {reference!r} uses backend "
                                   f"{backend.name!r}, which exposes no logits to compare against")
        if parallel_gpus(variants[reference]) > 1:
            raise EngineBenchError(f"config key models.{model}.reference: {reference!r} is spread over "
                                   f"{variants[reference]['parallel']['gpus']} GPUs (parallel); the reference runs "
                                   "in one process: name a variant without parallel")
        return reference
    dtype = cfg["source"].get("dtype")
    matches = [v for v, s in variants.items() if s["backend"] == "torch" and dtype and s["dtype"] == dtype
               and parallel_gpus(s) == 1]
    if not matches:
        precision = f"{dtype} (the snapshot's precision)" if dtype else "the snapshot's precision (unknown for a " \
            f"{cfg['source']['kind']} source)"
        raise EngineBenchError(f"config key models.{model}.reference: not set, and no torch variant runs at "
                               f"{precision}: name the variant that quality is measured against")
    return matches[0]
