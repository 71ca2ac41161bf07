"""The scheduler's methods of the Python API (a base of ``Memcubed``)."""

from __future__ import annotations

from typing import Any

from memcubed.kernel import Kernel
from memcubed.schemas.scheduler import DecisionRecord, SchedulerTick

__all__ = ["SchedulerClient"]


class SchedulerClient:
    """``scheduler_plan``, ``scheduler_run`` and ``scheduler_log`` as the client's principal."""

    principal: str

    def _open(self) -> Kernel:
        raise NotImplementedError  # provided by Memcubed

    def _checked(self, op: str, **fields: Any) -> Any:
        raise NotImplementedError  # provided by Memcubed

    def scheduler_plan(self, *, policy: str | None = None) -> SchedulerTick:
        """What the scheduler would decide next, writing nothing (administrators)."""
        inp = self._checked("scheduler_plan", policy=policy)
        return self._open().scheduler_plan(principal=self.principal, policy=inp.policy)

    def scheduler_run(self, *, policy: str | None = None) -> SchedulerTick:
        """Run one scheduler tick: decide, then submit, evict or defer within the budgets (administrators)."""
        inp = self._checked("scheduler_run", policy=policy)
        return self._open().scheduler_run(principal=self.principal, policy=inp.policy)

    def scheduler_log(self, *, after_seq: int = 0, limit: int = 100, action: str | None = None
                      ) -> list[DecisionRecord]:
        """Scheduler decisions, oldest first: about your cubes, or all of them for administrators."""
        inp = self._checked("scheduler_log", after_seq=after_seq, limit=limit, action=action)
        return self._open().scheduler_log(principal=self.principal, after_seq=inp.after_seq, limit=inp.limit,
                                          action=inp.action)
