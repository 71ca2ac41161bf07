"""The scheduler's methods of the Python API (a base of ``Memcubed``)."""

from __future__ import annotations

from memcubed.interfaces.api.base import ClientBase
from memcubed.schemas.scheduler import DecisionRecord, SchedulerTick

__all__ = ["SchedulerClient"]


class SchedulerClient(ClientBase):
    """``scheduler_plan``, ``scheduler_run`` and ``scheduler_log`` as the client's principal."""

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
