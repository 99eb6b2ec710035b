"""The backend interface. Stages (checkpoint, engine, bench, samples, quality) are written once against it.

Token ids in, token ids out: prompts are tokenized once with the snapshot's own tokenizer
(`enginebench.prompts`) and fed to every engine, so engines are compared on identical input and
their output tokens are counted from their own ids.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from ..errors import StageUnavailable


def parallel_gpus(settings: dict) -> int:
    """GPUs an engine spans: its variant's parallel.gpus, 1 without."""
    return (settings.get("parallel") or {}).get("gpus", 1)


class Engine(ABC):
    """A loaded engine, ready to generate."""

    # True when the first generation of each batch shape compiles or captures (torch.compile, CUDA
    # graphs): the bench then always warms up each batch size and records that time apart.
    compiles = False

    @abstractmethod
    def generate(self, batch: list[list[int]], max_new_tokens: int, stop_ids: list[int],
                 fixed_length: bool, on_token: Callable[[int], None] | None = None) -> list[list[int]]:
        """Greedy-decode every sequence in `batch` together; return only the new token ids.

        With `fixed_length`, stop tokens are suppressed and each row gets exactly `max_new_tokens`
        (throughput runs); otherwise a row ends at its first stop token, which is not returned.
        `on_token(row)` is called as each new token of a row reaches the host (streaming), so the
        bench can time the first token and the gaps between tokens.
        """

    def info(self) -> dict:
        """Facts about the loaded engine worth recording (device, precision, parameter count)."""
        return {}

    def logits(self, ids: list[int]):
        """Next-token logits after every position of one sequence, as a float32 numpy array of shape
        (len(ids), vocabulary), for the quality stage's perplexity and KL divergence; None if the
        engine does not expose them (its quality then rests on its samples)."""
        return None

    def tokenize(self, text: str, add_special: bool) -> list[int] | None:
        """The engine's own tokenization of `text`, for the parity check; None if it has none."""
        return None

    def counters(self) -> dict | None:
        """For the last generate() call, if the engine counts for itself: {"harness": {...}, "engine":
        {...}}, each with decode_s and decode_tokens (our clock around the decode loop, and the
        engine's own counter), so the harness overhead can be measured."""
        return None

    def peak_device_memory_bytes(self) -> int | None:
        """Peak accelerator memory since load, or None on CPU."""
        return None

    def kv_cache_bytes(self, ids: list[int]) -> dict | None:
        """What the engine's KV cache takes for a context of `ids`, read from the engine itself (not
        computed from the model's shape): {"bytes", "how"}; None if the engine does not say."""
        return None


class Backend(ABC):
    """One inference engine family: how its checkpoints and engines are made and loaded."""

    name: str
    gpu = False  # its engines need an NVIDIA GPU (rules then declare resources: gpu=1)
    runs_in_container = False  # its checkpoint and engine rules run in settings["container"]
    exposes_logits = False  # its engines implement Engine.logits (a quality reference needs them)
    tensor_parallel = False  # a runtime stage of an engine with parallel.gpus > 1 runs as that many torchrun ranks
    # its quality stage reads logits from a second engine built for them (Plan.logits_engine_spec),
    # because returning them slows the timed one
    separate_logits_engine = False

    def checkpoint_settings(self, settings: dict) -> dict:
        """The variant settings that define its checkpoint; variants with equal ones share it."""
        return {}

    def checkpoint_slug(self, checkpoint_settings: dict) -> str:
        return self.name

    def describe(self, settings: dict) -> dict:
        """Weight quantization and KV-cache type, as the report's cross-engine table shows them."""
        return {"quantization": "?", "kv_cache": "?"}

    def convert(self, snapshot: Path, settings: dict, out: Path) -> dict:
        """Build the checkpoint in `out` (a fresh folder). Return manifest fields, `timings` included.

        A backend with no real work here returns {"work": False, "reason": ...} and writes nothing
        else: it never copies the snapshot.
        """
        return {"work": False, "reason": f"{self.name} needs no checkpoint stage"}

    def build(self, snapshot: Path, checkpoint: Path, settings: dict, out: Path) -> dict:
        """Build the engine in `out` (a fresh folder). Same contract as `convert`."""
        return {"work": False, "reason": f"{self.name} needs no engine build stage"}

    def availability(self, stage: str, settings: dict) -> str | None:
        """None when this backend can run `stage` (checkpoint, engine) on this host, else the reason."""
        return None

    def planned(self, stage: str, snapshot: Path, checkpoint: Path, engine: Path, settings: dict) -> str | None:
        """The command `stage` runs (checkpoint, engine, runtime), recorded where it could not run."""
        return None

    def container_command(self, stage: str, snapshot: Path, checkpoint: Path, engine: Path | None,
                          settings: dict) -> str | None:
        """`planned`, made from the settings alone (no file read): a containerized job's params, which
        must not change once its inputs exist."""
        return self.planned(stage, snapshot, checkpoint, engine, settings)

    def predicts(self, settings: dict) -> str | None:
        """A label if `predictor` gives a stand-in for this variant's engine, runnable on this host
        before the engine is built (e.g. "ModelOpt fake-quant"), else None."""
        return None

    def predictor(self, snapshot: Path, settings: dict, *, threads: int, trust_remote_code: bool) -> Engine:
        """The stand-in engine of `predicts`: it predicts the engine's output quality, not its speed."""
        raise NotImplementedError

    def artifact_bytes(self, stage: str, settings: dict, parameters: int) -> float:
        """Estimated bytes of the checkpoint or engine `stage` writes for a model of `parameters`
        (0 for a stage without an artifact), for the disk check before a build."""
        return 0.0

    def batch_limit(self, settings: dict) -> tuple[int, str] | None:
        """The largest batch its engines take and the setting or limit that fixes it, if any."""
        return None

    def settings_error(self, settings: dict) -> str | None:
        """A combination of settings the schema cannot express that this backend refuses, else None."""
        return None

    def server(self, engine_file: Path, settings: dict, *, port: int, slots: int, threads: int,
               snapshot: Path) -> list[str]:
        """The command that serves `engine_file` on 127.0.0.1:`port` behind an OpenAI-compatible API with
        `slots` requests at once (the serve stage starts it, waits for GET /health and stops it), or
        raise StageUnavailable saying why this backend's engines are not served here. `snapshot`: the
        model's snapshot (its tokenizer), for a server that does not find it in the engine."""
        raise StageUnavailable(f"no server for {self.name} engines yet")

    def server_description(self, slots: int) -> str:
        """The server, in the report's words."""
        return f"{self.name}: no server"

    def server_command(self, engine_file, settings: dict, *, port, slots: int, threads, **host) -> list[str]:
        """server()'s command from its parts alone (no check of this host: `host` holds what server() reads
        of it), for the dry run to show with placeholders; StageUnavailable where the backend has no server."""
        raise StageUnavailable(f"no server for {self.name} engines yet")

    served_placeholder = "<engine file>"  # what the dry run shows for served_file() (only the job knows it)

    def server_placeholders(self, settings: dict) -> dict:
        """server_command()'s `host` facts as the dry run shows them (what only the job's host decides)."""
        return {}

    def fixed_length_fields(self, tokens: int) -> dict | None:
        """Request fields that make this backend's server answer exactly `tokens` tokens, where it refuses
        the load generator's own (`ignore_eos`, an extension of the OpenAI API); None where it takes those."""
        return None

    def served_file(self, snapshot: Path, checkpoint: Path, engine: Path) -> Path:
        """The engine file or folder its server loads."""
        return engine

    def served_model(self, served: Path, scratch: Path, encoder, trust_remote_code: bool) -> tuple[Path, dict]:
        """What the server loads, and what the record says of it: `served` itself, unless the server needs a
        setting the files lack to answer the stage's requests (`encoder`: the stage's PromptEncoder, which
        says whether they are chat completions; a folder written under `scratch`, removed after the stage)."""
        return served, {}

    def gpus(self, settings: dict, stage: str) -> int:
        """GPUs a job of `stage` asks (`resources: gpu`; SLURM --gpus): a runtime job of a split engine its
        parallel.gpus, else 1 where the backend's engines need a GPU, else 0."""
        if stage in ("bench", "samples", "quality", "serve") and parallel_gpus(settings) > 1:
            return parallel_gpus(settings)
        return int(self.gpu)

    def parallel_problem(self, parallel: dict, gpus_here: int) -> str | None:
        """Why this backend's runtime stages do not run an engine across parallel["gpus"] GPUs on a host with
        `gpus_here`, or None where they do."""
        if gpus_here < parallel["gpus"]:
            return f"parallel.gpus asks for {parallel['gpus']} GPUs; this host has {gpus_here or 'none'}"
        return None

    def check_host(self, settings: dict) -> None:
        """Raise EngineBenchError if this host can run the backend but not these settings (hardware)."""
        return None

    def host_identity(self) -> dict:
        """Facts about this host that define the backend's engines (e.g. the GPU's compute capability):
        part of each engine's spec, so that moving to other hardware marks its engines stale."""
        return {}

    @abstractmethod
    def load(self, snapshot: Path, checkpoint: Path, engine: Path, settings: dict, *,
             threads: int, trust_remote_code: bool) -> Engine:
        """Load the engine for generation."""

    def versions(self) -> dict:
        """Versions of the libraries this backend runs on (read with importlib.metadata)."""
        return {}
