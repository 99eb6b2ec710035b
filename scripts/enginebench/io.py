"""Atomic file and folder writes, so that no half-written artifact ever looks valid."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under `path` (following no symlinks)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _default_mode(private: int) -> int:
    """The mode a plain open() would give: mkstemp/mkdtemp make files private, artifacts should not be."""
    umask = os.umask(0)
    os.umask(umask)
    return private & ~umask


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file beside `path`, then rename it into place."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def write_text_atomic(path: Path, text: str, mode: int = 0o666) -> None:
    """PATH holds TEXT whole or is as it was; MODE (less the umask) is set before the rename, so that a
    script is never seen without its execute bit."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, _default_mode(mode))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _tmp_prefix(path: Path) -> str:
    """`.NAME.tmp-PID@HOST-`: the temporary folders of `path` say which process made them."""
    return f".{path.name}.tmp-{os.getpid()}@{socket.gethostname()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_tmp(path: Path) -> list[Path]:
    """Remove the temporary folders a killed run of `path` left beside it; return them.

    Only `path`'s own (`.NAME.tmp-…`), and not one whose process still runs on this host: Snakemake
    never runs two jobs for one output (and locks the working folder), so such a folder can only be a
    build started by hand. Folders made on another host, or before names carried the pid, are stale.
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}\.tmp-(?:(\d+)@(.+)-)?[a-z0-9_]{{8}}")
    removed = []
    for sibling in path.parent.iterdir() if path.parent.is_dir() else []:
        match = pattern.fullmatch(sibling.name)
        if match is None or not sibling.is_dir():
            continue
        pid, host = match.groups()
        if pid is not None and host == socket.gethostname() and _alive(int(pid)):
            continue
        shutil.rmtree(sibling, ignore_errors=True)
        removed.append(sibling)
    return removed


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path`, on failure it is removed.

    A killed process leaves the temporary folder behind; its name (`.NAME.tmp-*`) never matches an
    output pattern, so no later stage takes it for a finished artifact, and the next build of `path`
    removes it (remove_stale_tmp).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(path)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(path), dir=path.parent))
    os.chmod(tmp, _default_mode(0o777))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
