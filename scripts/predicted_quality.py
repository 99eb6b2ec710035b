"""Predict an engine's output quality before it is built: its backend's stand-in (for TensorRT-LLM,
the ModelOpt fake-quantized model) measured against the reference like any engine."""

from __future__ import annotations

import sys

from enginebench.cli import run_cli, runtime_main
from enginebench.quality import run_predicted_quality


def main(argv: list[str] | None = None) -> int:
    return runtime_main("predicted_quality", __doc__, run_predicted_quality, argv,
                        inputs=("reference", "reference_samples"), artifacts=("snapshot",))


if __name__ == "__main__":
    sys.exit(run_cli(main))
