"""A running job's lease: held by one worker's claim, renewed by heartbeats, checked before its output commits.

A worker that stops heartbeating (killed, frozen, cut off) loses its lease once ``lease_until`` passes, and
another worker may claim the job again. The first worker may still be alive and finish its work later, so
its output must not be committed then: while a job runs, the kernel's write transaction (``_write``) first
renews the lease inside the transaction (under the store's write lock, which every claim also takes, so no
claim can slip in between) and refuses with :class:`LeaseLost` when the claim is no longer this worker's;
at the end of that transaction the job is marked succeeded in it, so the output and the job's end commit
together, exactly once. A job kind therefore writes its output in one write transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from memcubed.backends.base import StorageBackend
from memcubed.errors import BackendUnavailable, LeaseLost
from memcubed.kernel.events import Event
from memcubed.schemas.jobs import JobRecord, JobState

__all__ = ["Heartbeats", "JobLease", "current_lease", "holding"]

log = logging.getLogger(__name__)

_held = threading.local()


@dataclass
class JobLease:
    """One worker's claim on a job (its ``attempt``-th), while the job runs on this thread.

    Attributes:
        job: the job as claimed.
        worker: the claiming worker's name.
        lease_s: how long each renewal extends the lease.
        lost: set when a renewal found the claim gone: the work should stop, its output is discarded.
        cancel: set when a renewal saw a cancellation request.
        stop: set by the worker to give the job back (a clean shutdown).
        committed: the job's output committed (and the job was marked succeeded with it).
    """

    job: JobRecord
    worker: str
    lease_s: float
    lost: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    committed: bool = False
    depth: int = 0

    @property
    def attempt(self) -> int:
        """Which claim of the job this is (1 on its first run)."""
        return self.job.attempts

    def renew(self, store: StorageBackend) -> bool:
        """Extend the lease (inside ``store.transaction()``); return whether this worker still holds it."""
        from memcubed.kernel.base import utcnow

        now = utcnow()
        cancel = store.renew_job_lease(self.job.id, self.worker, self.attempt, now,
                                       now + timedelta(seconds=self.lease_s))
        if cancel is None:
            self.lost.set()
            return False
        if cancel:
            self.cancel.set()
        return True

    def heartbeat(self, store: StorageBackend) -> None:
        """Renew the lease in a transaction of its own (the heartbeat thread); a busy store is tried again
        at the next beat."""
        try:
            with store.transaction():
                self.renew(store)
        except BackendUnavailable:
            log.warning("job %s: heartbeat failed, the store is busy", self.job.id)

    def open_write(self, store: StorageBackend) -> None:
        """Called first inside each outermost write transaction of the job's operation.

        Raises:
            LeaseLost: the claim is no longer this worker's, or the output was already committed.
        """
        if self.depth == 0 and (self.committed or self.lost.is_set() or self.stop.is_set()
                                or not self.renew(store)):
            raise LeaseLost(f"job {self.job.id}: worker {self.worker} no longer holds its lease (attempt "
                            f"{self.attempt}); its output is discarded", job_id=self.job.id, worker=self.worker,
                            attempt=self.attempt)
        self.depth += 1

    def close_write(self, store: StorageBackend, pending: list[Event], *, ok: bool) -> None:
        """Called last inside each outermost write transaction: a successful one ends the job as succeeded
        in the same transaction, its preliminary result naming the cubes it wrote."""
        from memcubed.kernel.base import utcnow

        self.depth -= 1
        if self.depth or not ok:
            return
        written = list(dict.fromkeys(e.cube_id for e in pending if e.cube_id is not None))
        now = utcnow()
        store.finish_job(self.job.id, JobState.SUCCEEDED, now, result={"cube_id": written[0]} if written else {},
                         worker=self.worker, attempt=self.attempt)
        pending.append(Event(kind="job.succeeded", principal=self.job.principal, at=now, cube_id=None,
                             version=None, details={"job": self.job.id, "kind": self.job.kind,
                                                    "attempt": self.attempt}))
        self.committed = True


def current_lease() -> JobLease | None:
    """The lease of the job running on this thread, if any."""
    lease: JobLease | None = getattr(_held, "lease", None)
    return lease


@contextmanager
def holding(lease: JobLease | None) -> Iterator[JobLease | None]:
    """Run the job's operation on this thread under ``lease`` (None: outside any, e.g. for a worker's own
    progress callback, whose writes are not the job's output)."""
    before = current_lease()
    _held.lease = lease
    try:
        yield lease
    finally:
        _held.lease = before


class Heartbeats:
    """One daemon thread per kernel that renews every lease its jobs hold, each ``interval_s`` seconds,
    so that a long step without progress reports (one model call) keeps its job; one store connection.

    Args:
        store: where the leases are renewed.
        interval_s: seconds between beats (a third of the lease: two beats may fail before it runs out).
    """

    def __init__(self, store: StorageBackend, interval_s: float) -> None:
        self._store = store
        self.interval_s = interval_s
        self._held: dict[int, JobLease] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def beating(self, lease: JobLease) -> Iterator[JobLease]:
        """Renew ``lease`` in the background while the block runs."""
        with self._lock:
            self._held[id(lease)] = lease
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(target=self._loop, name="memcubed-heartbeats", daemon=True)
                self._thread.start()
        try:
            yield lease
        finally:
            with self._lock:
                self._held.pop(id(lease), None)

    def close(self) -> None:
        """Stop the thread (leases then run out unless renewed otherwise)."""
        self._closed.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        while not self._closed.wait(self.interval_s):
            with self._lock:
                leases = list(self._held.values())
            for lease in leases:
                if not lease.lost.is_set():
                    try:
                        lease.heartbeat(self._store)
                    except Exception:  # a closed or broken store: the lease runs out, as if this process died
                        log.exception("job %s: heartbeat failed", lease.job.id)
