"""Property: a plan never does more than its principal could by hand.

For random plans (any operation, any cube id, any principal, random dependencies, forward and unknown ones
included) executed by bob on one store, the steps reported ``ran`` are replayed as direct calls by bob, in
order, on an identical twin store: every one of them must succeed there, and both stores must end in the
same state (cubes, principals, jobs). So every effect of the plan is one bob was allowed to cause himself.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

import memcubed
from memcubed.cube.ids import owned_cube_id
from memcubed.schemas.plan import StepStatus
from memcubed.testing.conformance.fixtures import OpenMc

PRINCIPALS = ["alice", "bob", "carol", "mallory"]
KEYS = [str(uuid.UUID(int=n)) for n in range(1, 9)]  # stable keys: the twin stores get the same cube ids
STRANGER = str(uuid.uuid4())


def _setup(mc: memcubed.Memcubed) -> list[str]:
    """Cubes of every kind of standing for bob: his own, alice's private, shared to him at each right, carol's."""
    for name in PRINCIPALS:
        mc.create_principal(name)
    alice, bob, carol = (mc.as_principal(n) for n in ("alice", "bob", "carol"))
    ids = [alice.add("alice private", id=KEYS[0]).id, bob.add("bob own", id=KEYS[1]).id,
           carol.add("carol private", id=KEYS[2]).id]
    for n, right in enumerate(("read", "write", "share", "admin")):
        cube = alice.add(f"alice shares {right}", id=KEYS[3 + n]).id
        alice.share(cube, "bob", right)
        ids.append(cube)
    bob.accept_share(ids[3])
    return ids


def _args(draw: st.DrawFn, op: str, cubes: list[str]) -> dict[str, Any]:
    cube = draw(st.sampled_from([*cubes, STRANGER]))
    who = draw(st.sampled_from(PRINCIPALS))
    return {
        "get": {"cube_id": cube}, "history": {"cube_id": cube}, "delete": {"cube_id": cube},
        "forget": {"cube_id": cube}, "archive": {"cube_id": cube}, "restore": {"cube_id": cube},
        "undelete": {"cube_id": cube}, "accept_share": {"cube_id": cube}, "decline_share": {"cube_id": cube},
        "update": {"cube_id": cube, "change": {"text": "edited by plan"}},
        "share": {"cube_id": cube, "grant": {"principal": who, "right": draw(st.sampled_from(["read", "admin"]))}},
        "revoke": {"cube_id": cube, "grantee": who},
        "add": {"text": "added by plan", "id": draw(st.sampled_from(KEYS[7:]))},
        "cache": {"cube_ids": [cube]},
        "create_principal": {"name": "eve", "is_admin": True}, "set_admin": {"name": who, "is_admin": True},
        "set_trust": {"policy": "all", "name": who}, "disable_principal": {"name": who},
        "execute_plan": {"plan": {"steps": []}},
    }[op]


OPS = ["get", "history", "delete", "forget", "archive", "restore", "undelete", "accept_share", "decline_share",
       "update", "share", "revoke", "add", "cache", "create_principal", "set_admin", "set_trust",
       "disable_principal", "execute_plan"]


@st.composite
def plans(draw: st.DrawFn, cubes: list[str]) -> dict[str, Any]:
    steps = []
    for n in range(draw(st.integers(min_value=1, max_value=8))):
        op = draw(st.sampled_from(OPS))
        # Mostly none or an earlier step; sometimes a later, unknown or own id.
        deps = draw(st.one_of(st.just([]), st.just([]), st.just([f"s{max(n - 1, 0)}"] if n else []),
                              st.lists(st.sampled_from([f"s{k}" for k in range(9)]), max_size=2, unique=True)))
        steps.append({"id": f"s{n}", "op": op, "args": _args(draw, op, cubes), "depends_on": deps})
    return {"steps": steps}


def _snapshot(mc: memcubed.Memcubed) -> Any:
    cubes = []
    for key in KEYS:
        for owner in PRINCIPALS:
            found = mc.kernel.store.load_cube(owned_cube_id(owner, key))
            if found is not None:
                cubes.append((found.id, found.owner, found.text, found.state, found.version, found.forgotten,
                              [(g.principal, g.right, g.accepted) for g in found.acl]))
    assert len(cubes) >= 7
    principals = [(p.name, p.is_admin, p.disabled, p.trust) for p in mc.list_principals()]
    jobs = [(j.kind, j.principal, j.params) for j in mc.list_jobs()]
    return sorted(cubes, key=str), principals, jobs


def test_a_plan_does_exactly_what_its_ran_steps_do_by_hand(open_mc: OpenMc, tmp_path: Path) -> None:
    probe = open_mc(tmp_path / "probe.db", embedder="none")
    cubes = _setup(probe)
    ran: list[str] = []
    own = cubes[1]
    # One plan of writes bob may make, so the variety check below never rests on what hypothesis happens to draw.
    by_hand = {"steps": [{"id": f"s{n}", "op": op, "args": args, "depends_on": []} for n, (op, args) in enumerate([
        ("get", {"cube_id": own}), ("history", {"cube_id": own}),
        ("update", {"cube_id": own, "change": {"text": "edited by plan"}}),
        ("share", {"cube_id": own, "grant": {"principal": "carol", "right": "read"}}),
        ("revoke", {"cube_id": own, "grantee": "carol"}), ("archive", {"cube_id": own}),
        ("restore", {"cube_id": own}), ("add", {"text": "added by plan", "id": KEYS[7]})])]}

    @given(plan=plans(cubes))
    @example(plan=by_hand)
    def check(plan: dict[str, Any]) -> None:
        where = tmp_path / uuid.uuid4().hex
        where.mkdir()
        planned, direct = open_mc(where / "plan.db", embedder="none"), open_mc(where / "direct.db", embedder="none")
        assert _setup(planned) == _setup(direct) == cubes
        report = planned.as_principal("bob").execute_plan(plan)
        assert not any(s.status is StepStatus.RAN and s.op in ("execute_plan", "create_principal", "set_admin",
                                                               "disable_principal") for s in report.steps)
        if plan == by_hand:
            assert [s.status for s in report.steps] == [StepStatus.RAN] * len(by_hand["steps"]), report.steps
        steps = {s["id"]: s for s in plan["steps"]}
        for outcome in report.steps:
            if outcome.status is StepStatus.RAN:
                step = steps[outcome.id]
                if step["op"] == "cache":
                    direct.kernel.call("submit_job", {"kind": "cache", "params": step["args"]}, principal="bob")
                else:
                    direct.kernel.call(step["op"], step["args"], principal="bob")  # raises if bob may not
        assert _snapshot(planned) == _snapshot(direct)
        ran.extend(s.op for s in report.steps if s.status is StepStatus.RAN)
        planned.close()
        direct.close()

    check()
    assert len(set(ran)) >= 5  # the plans did run a variety of writes, not only refusals
