"""Retention of soft-deleted cubes, on every backend: inside the retention ``undelete`` still works and the
blobs stay; past it, ``collect_garbage`` (and the scheduler loop's tick) purge the cube (text, payload and
blobs gone, a tombstone and an audited ``purge`` kept); dry runs change nothing; only administrators purge."""

from __future__ import annotations

import pytest

import memcubed
from memcubed.backends.models import LocalTransformersLM
from memcubed.cube.model import CubeState
from memcubed.engines.scheduler import SchedulerLoop
from memcubed.settings import Settings
from memcubed.testing.backends import Backend
from memcubed.testing.conformance.fixtures import OpenMc

__all__ = [
    "test_a_purged_source_takes_its_text_and_its_derived_kv_with_it",
    "test_only_administrators_purge_and_bad_input_is_refused",
    "test_the_scheduler_loop_purges_after_its_tick",
    "test_undelete_works_inside_the_retention_and_after_it_the_cube_is_purged",
]


def _stored(mc: memcubed.Memcubed) -> set[str]:
    return set(mc.kernel.blobs.iter_digests())


def test_undelete_works_inside_the_retention_and_after_it_the_cube_is_purged(mc: memcubed.Memcubed,
                                                                             lm: LocalTransformersLM) -> None:
    act = mc.cache([mc.add("The night train to Oban leaves from platform 2.").id], lm=lm)
    mc.delete(act.id)
    kept = mc.collect_garbage(grace_s=0)  # the default retention (30 days): kept, blobs and all
    assert kept.purged == [] and kept.retention_s == 30 * 24 * 3600 and set(act.segments) <= _stored(mc)
    assert mc.collect_garbage(grace_s=0, retention_s=3600).purged == []  # deleted just now: inside an hour
    assert mc.undelete(act.id).state is CubeState.ACTIVE
    mc.delete(act.id)
    records = len(mc.audit())
    dry = mc.collect_garbage(dry_run=True, grace_s=0, retention_s=0)
    assert dry.purged == [act.id] and len(mc.audit()) == records and set(act.segments) <= _stored(mc)
    swept = mc.collect_garbage(grace_s=0, retention_s=0)
    assert swept.purged == [act.id] and swept.collected >= len(act.segments)
    assert not set(act.segments) & _stored(mc)  # its blobs went in the same sweep
    with pytest.raises(memcubed.NotFound):
        mc.undelete(act.id)
    with pytest.raises(memcubed.NotFound):
        mc.get(act.id)
    purge = [r for r in mc.audit() if r.op == "purge"]
    assert [(r.cube_id, r.principal, r.details["reason"]) for r in purge] == [(act.id, "admin", "retention")]
    assert mc.collect_garbage(grace_s=0, retention_s=0).purged == []  # purged once
    assert mc.verify_audit().ok


def test_a_purged_source_takes_its_text_and_its_derived_kv_with_it(mc: memcubed.Memcubed,
                                                                   lm: LocalTransformersLM) -> None:
    source = mc.add("Alice's locker code is 4471.")
    act = mc.cache([source.id], lm=lm)
    mc.delete(source.id)  # the KV goes stale; both stay restorable until the retention ends
    assert set(act.segments) <= _stored(mc)
    assert mc.collect_garbage(grace_s=0, retention_s=0).purged == [source.id]
    stored = mc.kernel.store.load_cube(source.id)
    assert stored is not None and stored.forgotten and stored.text is None
    assert all(v.cube.text is None for v in mc.kernel.store.list_versions(source.id, limit=100, offset=0))
    derived = mc.kernel.store.load_cube(act.id)
    assert derived is not None and derived.state is CubeState.STALE and derived.segments == []
    assert not set(act.segments) & _stored(mc)
    assert "4471" not in str(mc.search("locker code", k=5))


def test_only_administrators_purge_and_bad_input_is_refused(mc: memcubed.Memcubed) -> None:
    alice = mc.as_principal("alice")
    cube = alice.add("alice's deleted note")
    alice.delete(cube.id)
    with pytest.raises(memcubed.AccessDenied):
        alice.collect_garbage(grace_s=0, retention_s=0)
    with pytest.raises(memcubed.AccessDenied):
        mc.kernel.purge_deleted(principal="alice", retention_s=0)
    for bad in (-1, "0; DROP TABLE cubes", 10**12):
        with pytest.raises(memcubed.ValidationError):
            mc.kernel.call("collect_garbage", {"retention_s": bad}, principal="admin")
    assert alice.undelete(cube.id).state is CubeState.ACTIVE  # nothing was purged


def test_the_scheduler_loop_purges_after_its_tick(open_mc: OpenMc, backend: Backend) -> None:
    mc = open_mc(backend.location(), embedder="none", settings=Settings(deleted_retention_s=0))
    gone = mc.add("a note deleted long enough ago")
    mc.delete(gone.id)
    SchedulerLoop(mc.kernel, interval_s=3600).tick()
    stored = mc.kernel.store.load_cube(gone.id)
    assert stored is not None and stored.forgotten
    assert [r.details["reason"] for r in mc.audit(cube_id=gone.id) if r.op == "purge"] == ["retention"]
