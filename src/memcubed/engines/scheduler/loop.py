"""The scheduler's background loop: one tick every ``interval_s`` on a daemon thread (off unless started;
``serve``, and ``worker --scheduler``, start it when ``settings.scheduler_enabled``, the default)."""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

__all__ = ["SchedulerLoop", "SchedulerRunner"]

log = logging.getLogger(__name__)


class SchedulerRunner(Protocol):
    """What the loop needs from the kernel."""

    def scheduler_run(self, *, principal: str, policy: str | None = None) -> Any:
        """Run one scheduler tick as ``principal``."""
        ...

    def purge_deleted(self, *, principal: str, dry_run: bool = False, retention_s: float | None = None) -> list[str]:
        """Purge the cubes deleted longer ago than the retention, as ``principal``."""
        ...


class SchedulerLoop:
    """Runs ``scheduler_run`` every ``interval_s`` seconds until stopped; after each tick, the cubes deleted
    longer ago than their retention are purged (``purge_deleted``).

    Args:
        kernel: the kernel to tick.
        interval_s: seconds between ticks (the first runs after one interval).
        principal: the administrator the ticks run as.
        policy: the policy (the configured one when None).
    """

    def __init__(self, kernel: SchedulerRunner, *, interval_s: float, principal: str = "admin",
                 policy: str | None = None) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self.kernel = kernel
        self.interval_s = interval_s
        self.principal = principal
        self.policy = policy
        self.ticks = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> Any:
        """Run one tick now, on the calling thread, then purge what outlived its retention."""
        result = self.kernel.scheduler_run(principal=self.principal, policy=self.policy)
        self.ticks += 1
        self.kernel.purge_deleted(principal=self.principal)
        return result

    def start(self) -> SchedulerLoop:
        """Start ticking on a daemon thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="memcubed-scheduler", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the current tick and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # the store was busy or closed: log and try again next interval
                log.exception("scheduler tick failed")
