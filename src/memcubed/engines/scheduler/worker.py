"""A job worker: a thread that claims jobs from the store and runs them through the kernel.

Any number of workers, in any number of processes, may share one store: claiming is atomic in the
store and each claim is leased, so each job runs once at a time, and a job whose worker died is
claimed again once its lease runs out. Stopping a worker gives its running job back to the queue.
While idle, a worker also collects unreferenced blobs every ``gc_every_s`` seconds.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from memcubed.schemas.jobs import JobRecord

__all__ = ["JobRunner", "JobWorker"]

log = logging.getLogger(__name__)

Report = Callable[[JobRecord, int, int], None]


class JobRunner(Protocol):
    """What a worker needs from the kernel."""

    def run_next_job(self, *, worker: str, kinds: Sequence[str] | None = None, stop: threading.Event | None = None,
                     report: Report | None = None) -> JobRecord | None:
        """Claim and run the oldest claimable job; None when there is none."""
        ...

    def collect_garbage(self, *, principal: str, dry_run: bool = False, grace_s: float | None = None) -> Any:
        """Remove unreferenced blobs older than the grace period."""
        ...


class JobWorker:
    """Runs jobs on a background thread (or the caller's) until stopped.

    Args:
        kernel: the kernel whose store holds the queue.
        kinds: job kinds to take (all the kernel knows when None).
        poll_s: how long to sleep when nothing is claimable.
        name: worker name recorded on the jobs it claims (unique per worker).
        report: called with (job, done, total) as a job's progress is recorded, and with the finished job
            (done = total = -1) when it ends.
        gc_every_s: collect unreferenced blobs this often while idle (0: never).
        gc_principal: the administrator the collection runs as.
    """

    def __init__(self, kernel: JobRunner, *, kinds: Sequence[str] | None = None, poll_s: float = 0.5,
                 name: str | None = None, report: Report | None = None, gc_every_s: float = 0.0,
                 gc_principal: str = "admin") -> None:
        self.kernel = kernel
        self.kinds = kinds
        self.poll_s = poll_s
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.report = report
        self.gc_every_s = gc_every_s
        self.gc_principal = gc_principal
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_gc = time.monotonic()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`request_stop` (or :meth:`stop`) was called."""
        return self._stop.is_set()

    def run_pending(self, *, limit: int | None = None) -> list[JobRecord]:
        """Run claimable jobs on the calling thread until none is left (or ``limit`` ran, or a stop was
        requested); return them as they ended."""
        ran: list[JobRecord] = []
        while (limit is None or len(ran) < limit) and not self._stop.is_set():
            job = self.run_one()
            if job is None:
                break
            ran.append(job)
        return ran

    def run_one(self) -> JobRecord | None:
        """Claim and run one job on the calling thread; None when nothing is claimable."""
        job = self.kernel.run_next_job(worker=self.name, kinds=self.kinds, stop=self._stop, report=self.report)
        if job is not None and self.report is not None:
            self.report(job, -1, -1)
        return job

    def start(self) -> JobWorker:
        """Start polling on a daemon thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name=f"memcubed-worker-{self.name}", daemon=True)
            self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the worker to stop: its running job is given back at its next progress report (queued again
        without counting the attempt), and no new job is claimed. Safe from a signal handler."""
        self._stop.set()

    def stop(self, timeout: float | None = None) -> None:
        """Request a stop and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wait(self) -> None:
        """Block until the worker's thread ended (after a stop was requested)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def collect_if_due(self) -> None:
        """Collect unreferenced blobs when ``gc_every_s`` passed since the last collection."""
        if self.gc_every_s <= 0 or time.monotonic() - self._last_gc < self.gc_every_s:
            return
        self._last_gc = time.monotonic()
        report = self.kernel.collect_garbage(principal=self.gc_principal)
        log.info("worker %s collected %s unreferenced blobs", self.name, getattr(report, "collected", "?"))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.run_one()
                if job is None:
                    self.collect_if_due()
            except Exception:  # the store was busy or closed: log, back off, go on
                log.exception("job worker %s failed to claim a job", self.name)
                job = None
            if job is None:
                self._stop.wait(self.poll_s)
