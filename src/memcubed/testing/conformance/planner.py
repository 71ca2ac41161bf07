"""The LLM planner on every backend: what a model is shown is scoped to the principal through the event
log, and a plan's refused steps write nothing but their audit records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import memcubed
from memcubed.schemas.plan import StepStatus
from memcubed.testing.openai_server import ScriptedChat


def test_the_event_head_is_the_newest_logged_seq(lexical: memcubed.Memcubed) -> None:
    mc = lexical
    kernel = mc.kernel
    for n in range(40):
        mc.add(f"memory {n}")
        logged = kernel.store.read_events(after_seq=0, limit=10_000)
        assert kernel._event_head() == logged[-1].seq, n
    with kernel.store.transaction():  # a trimmed log starts late: the head is found past the gap
        kernel.store.trim_events(through_seq=logged[-3].seq, before=datetime.now(UTC) + timedelta(days=1))
    assert [e.seq for e in kernel.store.read_events(after_seq=0)] == [e.seq for e in logged[-2:]]
    assert kernel._event_head() == logged[-1].seq


def test_the_planner_is_shown_only_what_its_principal_may_see(lexical: memcubed.Memcubed) -> None:
    mc = lexical
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    secret = alice.add("alice-canary-5521 her PIN").id
    alice.update(secret, text="alice-canary-5521 her new PIN")
    own = bob.add("bob waters the ferns on sundays").id
    bob.get(own)
    alice.get(secret)
    mc.kernel.flush_events()
    model = ScriptedChat([], then='{"steps": []}')
    proposal = bob.propose_plan("look after my plants", lm=model)
    shown = json.dumps(model.received)
    assert own in shown and "bob waters the ferns" in shown
    assert secret not in shown and "alice-canary-5521" not in shown
    assert proposal.memories == 1 and proposal.plan.steps == []


def test_refused_steps_write_nothing_but_their_audit_records(lexical: memcubed.Memcubed) -> None:
    mc = lexical
    secret = mc.as_principal("alice").add("alice's locker is 12").id
    records = len(mc.audit())
    plan = {"steps": [{"id": "a", "op": "forget", "args": {"cube_id": secret}},
                      {"id": "b", "op": "update", "args": {"cube_id": secret, "change": {"text": "x"}}},
                      {"id": "c", "op": "add", "args": {"text": "bob's own"}, "depends_on": ["a"]}]}
    report = mc.as_principal("bob").execute_plan(plan)
    assert [(s.status, s.code) for s in report.steps] == [
        (StepStatus.REJECTED, "not_found"), (StepStatus.REJECTED, "not_found"), (StepStatus.SKIPPED, None)]
    assert [r.op for r in mc.audit()[records:]] == ["plan.reject", "plan.reject", "plan.execute"]
    cube = mc.get(secret)
    assert (cube.version, cube.text) == (1, "alice's locker is 12")
    assert mc.as_principal("bob").list_cubes() == []
