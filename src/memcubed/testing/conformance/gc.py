"""Blob garbage collection, on every blob store: unreferenced blobs go after the grace period; a blob a live
cube uses, or one younger than the grace, never does; dry runs change nothing; only administrators collect."""

from __future__ import annotations

import pytest

import memcubed
from memcubed.backends.models import LocalTransformersLM


def _stored(mc: memcubed.Memcubed) -> set[str]:
    return set(mc.kernel.blobs.iter_digests())


def test_orphans_go_after_the_grace_period_and_referenced_blobs_stay(mc: memcubed.Memcubed,
                                                                    lm: LocalTransformersLM) -> None:
    kept = mc.cache([mc.add("The red kite nests in the old oak by the mill.").id], lm=lm)
    deleted = mc.cache([mc.add("The ferry leaves at nine from the north pier.").id], lm=lm)
    mc.delete(deleted.id)  # soft-deleted: undelete brings it back, so its blobs stay
    orphan = mc.kernel.blobs.put(b"segment of a job killed before its cube committed")
    used = {*kept.segments, *deleted.segments}
    assert orphan not in used and used | {orphan} == _stored(mc)
    records = len(mc.audit())

    young = mc.collect_garbage()  # the default grace (an hour): the orphan is too young
    assert (young.collected, young.young, young.referenced, young.blobs) == (0, 1, len(used), len(used) + 1)
    dry = mc.collect_garbage(dry_run=True, grace_s=0)
    assert dry.dry_run and dry.digests == [orphan] and dry.collected == 1 and dry.bytes > 0
    assert orphan in _stored(mc) and len(mc.audit()) == records  # a dry run writes nothing

    swept = mc.collect_garbage(grace_s=0)
    assert (swept.collected, swept.digests, swept.referenced) == (1, [orphan], len(used))
    assert _stored(mc) == used
    (record,) = mc.audit()[records:]
    assert (record.op, record.principal, record.details["collected"]) == ("gc", "admin", 1)
    assert mc.collect_garbage(grace_s=0).collected == 0  # nothing left to collect
    back = mc.undelete(deleted.id)
    answer = mc.generate("Where does the ferry leave from?", lm=lm, activation_id=back.id, max_new_tokens=2)
    assert answer.injected == [back.id]  # its KV was still there to load
    assert mc.verify_audit().ok


def test_blobs_released_by_forget_and_archive_are_not_needed_by_gc(mc: memcubed.Memcubed,
                                                                  lm: LocalTransformersLM) -> None:
    source = mc.add("Alice's locker code is 4471.")
    act = mc.cache([source.id], lm=lm)
    assert set(act.segments) <= _stored(mc)
    mc.forget(source.id)  # the derived KV encodes the forgotten text: purged and released at once
    assert not set(act.segments) & _stored(mc)
    assert mc.collect_garbage(grace_s=0).collected == 0


def test_only_administrators_collect(mc: memcubed.Memcubed) -> None:
    orphan = mc.kernel.blobs.put(b"an orphan")
    alice = mc.as_principal("alice")
    records = len(mc.audit())
    for dry_run in (False, True):
        with pytest.raises(memcubed.AccessDenied):
            alice.collect_garbage(dry_run=dry_run, grace_s=0)
    assert orphan in _stored(mc)
    assert [(r.op, r.principal) for r in mc.audit()[records:]] == [("denied", "alice")] * 2
    with pytest.raises(memcubed.ValidationError):
        mc.collect_garbage(grace_s=-1)
    with pytest.raises(memcubed.ValidationError):
        mc.kernel.call("collect_garbage", {"grace_s": "0; DROP TABLE blobs"}, principal="admin")
    with pytest.raises(memcubed.ValidationError):
        mc.kernel.call("collect_garbage", {"dry_run": True, "digests": [orphan]}, principal="admin")
    assert orphan in _stored(mc)
