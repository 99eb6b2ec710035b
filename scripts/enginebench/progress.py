"""Progress lines for long steps (the library's one way to say what it is doing)."""

from __future__ import annotations

import sys
import time


def progress(message: str) -> None:
    """Progress line for long steps; goes to stderr, which rules redirect into their log."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
