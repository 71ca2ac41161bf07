"""A working set that keeps failing backs off: every build of alice's working set fails (its one member, shared
by bob, is revoked after the tick decides and before the job runs, then shared again), and the scheduler spaces
its attempts exponentially on the event clock instead of queueing one every tick, saying so in the decision log
(the count comes from the stored decision and job history, read again at every tick). The
scheduler's budget check (``scheduler_admit``) charges a ``set_working_set`` the tokens it will compile."""

from __future__ import annotations

from datetime import UTC, datetime

import memcubed
from memcubed.schemas.events import ACCESS, Event
from memcubed.schemas.jobs import JobState
from memcubed.schemas.scheduler import DecisionRecord
from memcubed.testing.conformance.fixtures import backend, open_mc, pg_cluster
from memcubed.testing.conformance.scheduler import _read
from memcubed.testing.conformance.scheduler_workset import Opener, echo_url, wsched

__all__ = [
    "backend",
    "echo_url",
    "open_mc",
    "pg_cluster",
    "test_a_working_set_over_the_compile_budget_is_refused_with_the_budget_named",
    "test_a_working_set_that_keeps_failing_backs_off_exponentially",
    "wsched",
]


def _working_set_decision(mc: memcubed.Memcubed) -> DecisionRecord:
    [decision] = [d for d in mc.scheduler_run().decisions if d.action == "working_set"]
    return decision


def _fail_its_job(mc: memcubed.Memcubed, decision: DecisionRecord, member: str) -> None:
    """The member is revoked before the worker builds the working set (so its job fails), then shared again."""
    bob = mc.as_principal("bob")
    bob.revoke(member, "alice")
    while mc.kernel.run_next_job(worker="test") is not None:
        pass
    assert decision.job_id is not None
    assert mc.kernel.job(decision.job_id, principal="alice").state is JobState.FAILED
    bob.share(member, "alice")


def _advance(mc: memcubed.Memcubed, member: str, clock: float) -> None:
    """A read by alice at ``clock`` (the event clock is the time of the latest event folded)."""
    at = datetime.fromtimestamp(clock, UTC)
    with mc.kernel.store.transaction():
        mc.kernel.store.append_events([Event(ACCESS, "alice", at, member, 1, {"req": f"r{clock}"})])


def test_a_working_set_that_keeps_failing_backs_off_exponentially(wsched: Opener) -> None:
    mc = wsched()
    member = mc.as_principal("bob").add("bob's boat is moored at pier 3").id
    mc.as_principal("bob").share(member, "alice")
    _read(mc, "alice", [member])
    first = _working_set_decision(mc)
    assert first.outcome == "done" and "failures" not in first.inputs
    _fail_its_job(mc, first, member)
    # One failure: no new attempt before 60 s of the event clock, whatever the number of ticks.
    for _ in range(3):
        held = _working_set_decision(mc)
        assert held.outcome == "deferred" and held.job_id is None
        assert held.reason is not None and held.reason.startswith("backing off: 1 failure in a row, next try after")
        assert held.inputs["failures"] == 1 and held.inputs["retry_at"] == first.clock + 60
    _advance(mc, member, first.clock + 61)
    second = _working_set_decision(mc)
    assert second.outcome == "done" and second.inputs["failures"] == 1  # the retry, with what it retries
    _fail_its_job(mc, second, member)
    # Two failures in a row: the wait doubles (120 s), so 61 s later it still holds.
    _advance(mc, member, second.clock + 61)
    held = _working_set_decision(mc)
    assert held.outcome == "deferred" and held.reason is not None and "2 failures" in held.reason
    assert held.inputs["retry_at"] == second.clock + 120
    _advance(mc, member, second.clock + 121)
    third = _working_set_decision(mc)
    assert third.outcome == "done" and third.inputs["failures"] == 2
    while mc.kernel.run_next_job(worker="test") is not None:
        pass
    assert mc.as_principal("alice").working_set().members == [member]  # it succeeded: the count starts over
    submitted = [d for d in mc.scheduler_log(limit=1000) if d.action == "working_set" and d.job_id]
    assert len(submitted) == 3  # over 9 ticks


def test_a_working_set_over_the_compile_budget_is_refused_with_the_budget_named(wsched: Opener) -> None:
    mc = wsched(scheduler_budgets={"compile_tokens_per_hour": 40})
    alice = mc.as_principal("alice")
    small = alice.add("short").id
    big = alice.add("a long memory about the harbour " * 20).id
    kernel = mc.kernel
    assert kernel.scheduler_admit("set_working_set", {"cube_ids": [small]}, principal="alice") is None
    reason = kernel.scheduler_admit("set_working_set", {"cube_ids": [small, big]}, principal="alice")
    assert reason is not None and "compile_tokens" in reason
    job = {"kind": "set_working_set", "params": {"cube_ids": [big], "namespace": "default"}}
    assert "compile_tokens" in (kernel.scheduler_admit("submit_job", job, principal="alice") or "")
    # A plan that asks for it is refused, with the reason, and builds nothing.
    report = alice.execute_plan({"steps": [{"id": "ws", "op": "set_working_set", "args": {"cube_ids": [big]}}]})
    [step] = report.steps
    assert step.status.value == "rejected" and "compile_tokens" in step.reason
    assert alice.working_set().cube is None
