"""The scheduler moves KV out as well as in: over budget it evicts the lowest-value activation cube (its
blobs released, its sources kept), and a stale one is dropped without bringing back a deleted source."""

from __future__ import annotations

from pathlib import Path

import memcubed
from memcubed.backends.models import LocalTransformersLM
from memcubed.cube.model import CubeState
from memcubed.settings import Settings
from memcubed.testing.conformance.fixtures import OpenMc


def _open(open_mc: OpenMc, db_path: Path, **budgets: float) -> memcubed.Memcubed:
    # Cache policies alone: a working set would take the hot memory first.
    mc = open_mc(db_path, embedder="none", settings=Settings(scheduler_budgets=budgets, scheduler_stable_s=0,
                                                             scheduler_working_sets=False))
    mc.create_principal("alice")
    return mc


def test_over_budget_the_cold_activation_is_evicted_for_the_hot_set(open_mc: OpenMc, db_path: Path,
                                                                     lm: LocalTransformersLM) -> None:
    mc = _open(open_mc, db_path)
    alice = mc.as_principal("alice")
    cold = alice.add("the old gate code was 1234")
    hot = alice.add("the new gate code is 9876")
    activation = alice.cache([cold.id], lm=lm)
    size = activation.meta["bytes"]
    mc.kernel.settings.scheduler_budgets = {"activation_bytes": float(size) * 1.5}
    for _ in range(4):
        alice.get(hot.id)
    mc.kernel.flush_events()
    tick = mc.scheduler_run()
    done = [(d.action, d.targets, d.principal) for d in tick.decisions if d.outcome == "done"]
    assert done == [("evict", [activation.id], "alice"), ("cache", [hot.id], "alice")]
    evicted = mc.get(activation.id)
    assert evicted.state is CubeState.ARCHIVED and evicted.segments == []
    assert not any(mc.kernel.blobs.exists(d) for d in activation.segments)
    assert mc.get(cold.id).state is CubeState.ACTIVE  # the plaintext stays
    assert tick.decisions[0].cost["activation_bytes"] == -size
    assert {r.op for r in mc.audit()[-4:]} >= {"archive", "scheduler.decision", "job.submit"}


def test_a_stale_activation_is_dropped_and_a_deleted_source_stays_deleted(open_mc: OpenMc, db_path: Path,
                                                                         lm: LocalTransformersLM) -> None:
    mc = _open(open_mc, db_path)
    alice = mc.as_principal("alice")
    source = alice.add("the meeting moved to room 4")
    activation = alice.cache([source.id], lm=lm)
    alice.delete(source.id)
    assert mc.get(activation.id).state is CubeState.STALE
    tick = mc.scheduler_run()
    assert [(d.action, d.targets, d.outcome) for d in tick.decisions] == [("drop", [activation.id], "done")]
    assert mc.get(activation.id).state is CubeState.ARCHIVED
    assert mc.get(source.id, include_deleted=True).state is CubeState.DELETED
