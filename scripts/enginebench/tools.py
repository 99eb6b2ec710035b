"""Running the external tools a backend wraps (converters, engine builders)."""

from __future__ import annotations

import os
import subprocess
import sys

from .errors import StageFailure


def run_tool(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run `cmd` (with `env` added to the environment) with its output in the job's log; a non-zero exit
    is a StageFailure carrying the tool's last message (a refusal such as an unsupported architecture is
    recorded, not crashed on)."""
    print("+ " + " ".join([*(f"{k}={v}" for k, v in (env or {}).items()), *cmd]), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, **env} if env else None)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        reason = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), "no message")
        raise StageFailure(f"{what} failed: {reason.strip()}")
