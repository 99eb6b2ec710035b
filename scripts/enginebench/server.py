"""An engine's server process: started, waited for (GET /health), asked, and stopped by its PID whatever
happens, so that no server outlives its stage (not even a stage killed with SIGKILL: the kernel kills
the server when the process that started it dies)."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .errors import EngineBenchError
from .progress import progress

PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies


class ServerError(EngineBenchError):
    """The server did not come up, died, or answered what no OpenAI-compatible server answers."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    os.setsid()  # its own process group: stopping it stops whatever it started
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Server:
    """`with Server(cmd, log) as server:` starts `cmd` (which listens on server.port), returns once it
    answers GET /health with 200, and stops it on the way out, pass or fail."""

    def __init__(self, cmd: list[str], port: int, log: Path, start_timeout_s: float):
        self.cmd, self.port, self.log, self.start_timeout_s = cmd, port, Path(log), start_timeout_s
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            try:
                self.process = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
            except OSError as error:
                raise ServerError(f"could not start the server `{self.cmd[0]}`: {error.strerror}") from None
        progress(f"server: started (PID {self.process.pid}): {' '.join(self.cmd)}")
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(text[-lines:])

    def exited(self) -> str | None:
        """Why the server is gone (its exit status), or None while it runs."""
        rc = self.process.poll()
        if rc is None:
            return None
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
        return f"the server (PID {self.pid}) {how}; its last lines:\n{self.tail()}"

    def _wait_healthy(self) -> None:
        started = time.monotonic()
        while time.monotonic() - started < self.start_timeout_s:
            if gone := self.exited():
                raise ServerError(f"{gone}\n(before it answered GET {self.url}/health)")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        progress(f"server: healthy after {time.monotonic() - started:.1f} s")
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet, or 503 while it loads the model
            time.sleep(0.25)
        raise ServerError(f"the server (PID {self.pid}) did not answer GET {self.url}/health with 200 within "
                          f"{self.start_timeout_s:g} s (serve.start_timeout_s); its last lines:\n{self.tail()}")

    def post(self, path: str, body: dict, timeout: float = 300) -> dict:
        """POST JSON, return the JSON answer; an error status or a dead server is one ServerError."""
        request = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            raise ServerError(f"POST {path} answered {error.code}: {error.read()[:300].decode(errors='replace')}") \
                from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            raise ServerError(self.exited() or f"POST {path} failed: {error}") from None

    def stop(self, grace_s: float = 10) -> None:
        """SIGTERM to the server's process group, SIGKILL after `grace_s`; waits until it is gone."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        progress(f"server: stopped (PID {self.pid}, status {self.process.returncode})")
