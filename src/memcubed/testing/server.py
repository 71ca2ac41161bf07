"""Run a real ``memcubed serve`` process on a free loopback port (for tests and benchmarks)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["RunningServer", "free_port", "running_server"]

_KEY = re.compile(r"(mck_[0-9a-f]{16}_[A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class RunningServer:
    """A started server: its base URL, the administrator's key (printed on first start) and the process."""

    url: str
    admin_key: str | None
    process: subprocess.Popen[str]
    db: Path | str
    log: Path


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(db: Path | str, *, embedder: str = "none", env: Mapping[str, str] | None = None,
                   args: Sequence[str] = (), timeout_s: float = 60.0, log: Path | None = None
                   ) -> Iterator[RunningServer]:
    """Start ``memcubed serve`` on ``db`` (a SQLite file or a ``postgresql://`` DSN) and a free port, wait
    until it answers, stop it on exit.

    The child inherits this environment (``PYTHONPATH`` included) plus ``env``, with the scheduler loop off
    unless ``env`` turns it on (a tick would compile KV with a local model in the background); its stderr goes to
    ``log`` (default ``<db>.log`` for a file, ``memcubed-serve-<port>.log`` in the temp folder otherwise).

    Raises:
        RuntimeError: the server exited or did not answer ``/health`` within ``timeout_s``.
    """
    port = free_port()
    if log is None:
        is_file = not str(db).startswith(("postgres://", "postgresql://"))
        log = Path(f"{db}.log") if is_file else Path(tempfile.gettempdir()) / f"memcubed-serve-{port}.log"
    command = [sys.executable, "-m", "memcubed", "--db", str(db), "--embedder", embedder, "serve",
               "--port", str(port), *args]
    sink = open(log, "a", encoding="utf-8")  # noqa: SIM115 - closed below, after the process
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=sink, text=True,
                               env={**os.environ, "MEMCUBED_SCHEDULER_ENABLED": "0", **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        admin_key = _wait(process, url, timeout_s)
        yield RunningServer(url=url, admin_key=admin_key, process=process, db=db, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        sink.close()


def _wait(process: subprocess.Popen[str], url: str, timeout_s: float) -> str | None:
    assert process.stdout is not None
    # Two lines come before uvicorn listens: the banner, then the admin key (or a note that it exists).
    banner, key_line = process.stdout.readline(), process.stdout.readline()
    if "serving at" not in banner:
        raise RuntimeError(f"memcubed serve did not start: {banner!r} (exit {process.poll()})")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"memcubed serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                match = _KEY.search(key_line)
                return match.group(1) if match else None
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"memcubed serve did not answer within {timeout_s} s")
