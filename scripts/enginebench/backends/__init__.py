"""Backend registry: the only place that maps a backend name to its implementation."""

from __future__ import annotations

from ..errors import EngineBenchError
from .base import Backend, Engine

_REGISTRY = {
    "torch": ("enginebench.backends.torch_backend", "TorchBackend"),
    "llamacpp": ("enginebench.backends.llamacpp_backend", "LlamaCppBackend"),
    "trtllm": ("enginebench.backends.trtllm_backend", "TrtllmBackend"),
}


def backend_names() -> list[str]:
    return list(_REGISTRY)


def get_backend(name: str) -> Backend:
    """The backend called `name`; its module (and heavy imports) load only when it runs."""
    try:
        module_name, class_name = _REGISTRY[name]
    except KeyError as error:
        raise EngineBenchError(f"unknown backend {name!r} (known: {', '.join(_REGISTRY)})") from error
    import importlib

    return getattr(importlib.import_module(module_name), class_name)()


__all__ = ["Backend", "Engine", "backend_names", "get_backend"]
