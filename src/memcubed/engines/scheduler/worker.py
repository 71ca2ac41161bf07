"""A job worker: a thread that claims queued jobs from the store and runs them through the kernel.

Any number of workers, in any number of processes, may share one store: claiming is atomic
in the store, so each job runs once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence
from typing import Protocol

from memcubed.schemas.jobs import JobRecord

__all__ = ["JobRunner", "JobWorker"]

log = logging.getLogger(__name__)


class JobRunner(Protocol):
    """What a worker needs from the kernel."""

    def run_next_job(self, *, worker: str, kinds: Sequence[str] | None = None) -> JobRecord | None:
        """Claim and run the oldest queued job; None when nothing is queued."""
        ...


class JobWorker:
    """Runs queued jobs on a background thread until stopped.

    Args:
        kernel: the kernel whose store holds the queue.
        kinds: job kinds to take (all the kernel knows when None).
        poll_s: how long to sleep when the queue is empty.
        name: worker name recorded on the jobs it claims.
    """

    def __init__(self, kernel: JobRunner, *, kinds: Sequence[str] | None = None, poll_s: float = 0.5,
                 name: str | None = None) -> None:
        self.kernel = kernel
        self.kinds = kinds
        self.poll_s = poll_s
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_pending(self, *, limit: int | None = None) -> list[JobRecord]:
        """Run queued jobs on the calling thread until the queue is empty (or ``limit`` ran); return them."""
        ran: list[JobRecord] = []
        while limit is None or len(ran) < limit:
            job = self.kernel.run_next_job(worker=self.name, kinds=self.kinds)
            if job is None:
                break
            ran.append(job)
        return ran

    def start(self) -> JobWorker:
        """Start polling on a daemon thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name=f"memcubed-worker-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to stop after its current job and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.kernel.run_next_job(worker=self.name, kinds=self.kinds)
            except Exception:  # the store was busy or closed: log, back off, go on
                log.exception("job worker %s failed to claim a job", self.name)
                job = None
            if job is None:
                self._stop.wait(self.poll_s)
