"""A batch of adds is written with one statement per table for its versions and audit records: the same
records, chained in the same order, as adding the cubes one by one; and a batch that fails writes nothing."""

from __future__ import annotations

import pytest

import memcubed
from memcubed import AlreadyExists
from memcubed.kernel.audit import GENESIS, record_hash
from memcubed.schemas.ops import HistoryEntry

_MINE = "0195d7a1-0000-7000-8000-00000000000a"  # the caller's own key for a cube


def _add_records(mc: memcubed.Memcubed) -> list[tuple[str, str | None, int | None]]:
    return [(r.op, r.cube_id, r.version) for r in mc.audit() if r.op == "add"]


def test_a_batch_chains_one_record_per_cube_in_order(mc: memcubed.Memcubed) -> None:
    alice = mc.as_principal("alice")
    before = mc.audit()[-1].seq
    cubes = alice.add_many([{"text": f"memory {n}", "tags": [f"t{n}"]} for n in range(7)])
    records = [r for r in mc.audit() if r.seq > before]
    assert [(r.op, r.cube_id, r.version) for r in records] == [("add", c.id, 1) for c in cubes]
    assert [r.seq for r in records] == list(range(before + 1, before + 8))
    prev = mc.audit()[before - 1].hash if before else GENESIS
    for record in records:
        assert record.prev_hash == prev
        assert record.hash == record_hash(record, mc.kernel.seal)
        prev = record.hash
    assert [alice.history(c.id)[0].cube.text for c in cubes] == [f"memory {n}" for n in range(7)]
    assert mc.verify_audit().ok
    single = mc.as_principal("bob").add("memory 0", tags=["t0"])
    # A cube added alone hashes its content the same way as one added in a batch (same fields, same text).
    ours, theirs = (next(r for r in mc.audit() if r.cube_id == cube_id).details["content"]
                    for cube_id in (cubes[0].id, single.id))
    assert ours["text"] == theirs["text"]


def test_a_batch_that_fails_on_its_last_cube_writes_nothing(mc: memcubed.Memcubed) -> None:
    alice = mc.as_principal("alice")
    alice.add("taken", id=_MINE)
    head = mc.audit()[-1]
    with pytest.raises(AlreadyExists):
        alice.add_many([{"text": "one"}, {"text": "two"}, {"text": "three", "id": _MINE}])
    assert mc.audit()[-1] == head
    assert [c.text for c in alice.list_cubes(limit=1000)] == ["taken"]
    assert {h.cube.text for h in alice.search("one two three", k=5).hits} == {"taken"}
    assert mc.verify_audit().ok
    alice.add_many([{"text": "one"}, {"text": "two"}])  # the chain goes on from the same head
    assert mc.verify_audit().ok


def test_insert_versions_refuses_a_repeat_and_writes_none(mc: memcubed.Memcubed) -> None:
    alice = mc.as_principal("alice")
    cube = alice.add("kept")
    store = mc.kernel.store
    later = cube.model_copy(update={"version": 2, "text": "later"})
    entry = HistoryEntry(version=2, op="update", actor="alice", at=cube.updated_at, cube=later)
    with store.transaction(), pytest.raises(AlreadyExists):
        store.insert_versions([entry, entry])
    first = HistoryEntry(version=1, op="add", actor="alice", at=cube.updated_at, cube=cube)
    with store.transaction(), pytest.raises(AlreadyExists):
        store.insert_versions([entry, first])  # version 1 is stored already
    assert [h.version for h in alice.history(cube.id)] == [1]
