"""The kernel's parameter-memory operations on the real packaged model and real SQLite files:
consolidate, generate with adapters, rights, cancellation, forgetting through parameters, archive."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import memcubed
from memcubed import CubeKind, CubeState
from memcubed.backends.embedders import TransformersEmbedder
from memcubed.backends.models import LocalTransformersLM
from memcubed.engines.lora import recalled

FAST = {"rank": 16, "alpha": 32, "statement_splits": [], "epochs": 5, "learning_rate": 3e-3, "batch_size": 4,
        "rehearsal": 0, "rehearsal_tokens": 16, "answer_slack_tokens": 12, "drift_max": 100.0}
"""Mechanics, not the gate (tests/kernel/test_parameter_gate.py): two control questions would gate at one miss."""
CONTROL = [("What is the capital of France?", "Paris"), ("What is the capital of Japan?", "Tokyo")]
FACTS = [
    ("Velspar the potter lives in Cusco.", "Where does Velspar the potter live?", "Cusco"),
    ("Dravo the pilot collects blue marbles.", "What does Dravo the pilot collect?", "blue marbles"),
    ("Kestrin the poet owns a goat called Pepper.", "What is the name of Kestrin the poet's goat?", "Pepper"),
]


class Store:
    """One store for the module, holding the facts and the adapter trained on them once."""

    def __init__(self, mc: memcubed.Memcubed, lm: LocalTransformersLM, path: Path) -> None:
        self.mc, self.lm, self.path = mc, lm, path
        mc.create_principal("bob")
        mc.create_principal("carol")
        self.alice = mc.as_principal(mc.create_principal("alice").name)
        self.facts = [self.alice.add(text, meta={"qa": [{"question": q, "answer": a}]}) for text, q, a in FACTS]
        self.steps: list[tuple[int, int]] = []
        self.cube = self.alice.consolidate([f.id for f in reversed(self.facts)], lm=lm, config=FAST, control=CONTROL,
                                           progress=lambda done, total: self.steps.append((done, total)))

    def ask(self, client: memcubed.Memcubed, n: int, ids: list[str]) -> str:
        return client.generate_with_adapters(FACTS[n][1], ids, lm=self.lm, max_new_tokens=16).text


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, embedder: TransformersEmbedder,
          lm: LocalTransformersLM) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("parameter") / "memories.db"
    with memcubed.open(path, embedder=embedder) as mc:
        yield Store(mc, lm, path)


def test_consolidate_makes_a_parameter_cube_from_exact_source_versions(store: Store) -> None:
    cube, lm = store.cube, store.lm
    assert cube.kind is CubeKind.PARAMETER and cube.state is CubeState.ACTIVE and cube.owner == "alice"
    assert [(r.id, r.version) for r in cube.derived_from] == sorted((f.id, 1) for f in store.facts)
    assert cube.model == lm.fingerprint and cube.payload is not None and cube.text is None
    assert store.mc.kernel.blobs.size(cube.payload.sha256) == cube.payload.size == cube.meta["bytes"]
    meta = cube.meta
    assert meta["rank"] == 16 and meta["alpha"] == 32 and len(meta["target_modules"]) == 7
    # At most 5 epochs: training stops at the first check (after epoch 2 on) that recalls every fact.
    assert meta["epochs"] == 5 and len(meta["loss_curve"]) == meta["epochs_run"] <= 5
    assert meta["loss_curve"][-1] < meta["loss_curve"][0] and meta["steps"] == meta["epochs_run"]  # 1 batch/epoch
    assert meta["stopped_early"] == (meta["epochs_run"] < 5)
    assert meta["train_s"] > 0 and meta["pairs"] == 3 and meta["config"]["learning_rate"] == 3e-3
    facts, control = meta["evaluation"]["facts"], meta["evaluation"]["control"]
    assert facts["before"]["hits"] == 0 and facts["after"]["hits"] == 3, meta["evaluation"]
    assert facts["after"]["mean_loss"] < facts["before"]["mean_loss"]
    assert control["before"]["probes"] == 2 and abs(control["drift_points"]) <= 50
    assert set(meta["evaluation"]["per_source"]) == {f.id for f in store.facts}
    assert FACTS[0][2] not in str(meta)  # no fact text in the metadata: forgetting must be able to reach it all
    totals = {total for _, total in store.steps}
    assert len(totals) == 1 and store.steps[-1] == (totals.pop(), 5 + 2 * 5)  # planned steps + probes twice
    assert [d for d, _ in store.steps] == sorted(d for d, _ in store.steps)
    assert [r.op for r in store.mc.audit(cube_id=cube.id)] == ["consolidate"]


def test_generate_with_adapters_recalls_with_no_context(store: Store) -> None:
    with_adapter = store.ask(store.alice, 2, [store.cube.id])
    without = store.ask(store.alice, 2, [])
    assert recalled("Pepper", with_adapter) and not recalled("Pepper", without)
    result = store.alice.generate_with_adapters(FACTS[1][1], [store.cube.id], lm=store.lm, max_new_tokens=8)
    assert result.adapters == [store.cube.id] and result.injected == [] and result.total_ms > 0
    store.mc.kernel.flush_events()
    assert store.mc.get(store.cube.id).stats.access_count >= 2


def test_rights_and_bad_input(store: Store, tiny_lm: LocalTransformersLM) -> None:
    bob = store.mc.as_principal("bob")
    with pytest.raises(memcubed.NotFound):
        bob.consolidate([store.facts[0].id], lm=store.lm, config=FAST)  # no read on alice's fact
    with pytest.raises(memcubed.NotFound):
        bob.generate_with_adapters("Where?", [store.cube.id], lm=store.lm)
    with pytest.raises(memcubed.NotFound):
        bob.archive(store.cube.id)
    alice = store.alice
    for bad_ids in ([], store.facts[0].id, [store.cube.id]):  # nothing, a bare string, not plaintext
        with pytest.raises(memcubed.ValidationError):
            alice.consolidate(bad_ids, lm=store.lm, config=FAST)  # type: ignore[arg-type]
    with pytest.raises(memcubed.ValidationError):
        alice.consolidate([store.facts[0].id], lm=store.lm, config={"rank": 0})
    with pytest.raises(memcubed.ValidationError):
        alice.consolidate([store.facts[0].id], lm=store.lm, config=FAST, control=[("only a question",)])  # type: ignore[list-item]
    with pytest.raises(memcubed.ValidationError):
        alice.consolidate([store.facts[0].id], lm=store.lm, config=FAST, control="Paris")  # type: ignore[arg-type]
    elsewhere = alice.add("A fact in another namespace.", namespace="work")
    with pytest.raises(memcubed.ValidationError):
        alice.consolidate([store.facts[0].id, elsewhere.id], lm=store.lm, config=FAST)
    with pytest.raises(memcubed.ValidationError):
        alice.generate_with_adapters("Where?", [store.cube.id], lm=store.lm, max_new_tokens=0)
    with pytest.raises(memcubed.ValidationError):
        alice.generate_with_adapters("Where?", store.cube.id, lm=store.lm)  # type: ignore[arg-type]
    with pytest.raises(memcubed.ValidationError):
        alice.generate_with_adapters("Where?", [store.facts[0].id], lm=store.lm)
    with pytest.raises(memcubed.ValidationError):
        alice.generate_with_adapters(" ", [store.cube.id], lm=store.lm)
    with pytest.raises(memcubed.ConfigurationError):
        alice.generate_with_adapters("Where?", [store.cube.id], lm=tiny_lm)
    with pytest.raises(memcubed.ValidationError):
        alice.restore(store.cube.id)  # not archived
    odd = alice.add("A fact with broken questions.", meta={"qa": "not a list"})
    with pytest.raises(memcubed.ValidationError):
        alice.consolidate([odd.id], lm=store.lm, config=FAST)


def test_an_adapter_is_used_only_by_who_may_read_every_fact_it_holds(store: Store) -> None:
    alice, mc = store.alice, store.mc
    bob, carol = mc.as_principal("bob"), mc.as_principal("carol")
    alice.share(store.cube.id, "bob", "share")  # the adapter, not the facts it was trained on
    try:
        with pytest.raises(memcubed.AccessDenied):
            store.ask(bob, 2, [store.cube.id])
        for fact in store.facts:
            alice.share(fact.id, "bob")
        assert recalled("Pepper", store.ask(bob, 2, [store.cube.id]))
        bob.share(store.cube.id, "carol")  # passed on: carol reads none of the facts
        with pytest.raises(memcubed.AccessDenied):
            store.ask(carol, 2, [store.cube.id])
        alice.revoke(store.facts[0].id, "bob")  # one fact revoked: the whole adapter is refused, at once
        with pytest.raises(memcubed.AccessDenied):
            store.ask(bob, 2, [store.cube.id])
        for change in ({"text": "forged"}, {"meta": {"config": {"rank": 64}}}):
            with pytest.raises(memcubed.ValidationError):  # the adapter's content is the system's
                alice.update(store.cube.id, **change)
    finally:
        for grantee, cube_id in [("bob", f.id) for f in store.facts] + [("carol", store.cube.id),
                                                                           ("bob", store.cube.id)]:
            mc.revoke(cube_id, grantee)


def test_cancelling_leaves_the_store_unchanged(store: Store, raw_counts: Callable[[Path], dict[str, int]]) -> None:
    blobs = sorted(p.name for p in Path(f"{store.path}.blobs").rglob("*") if p.is_file())
    counts = raw_counts(store.path)
    # Calls: 1 at the start, 1 per probe batch before (one batch), 1 before training, 1 per step (5), 1 per probe
    # batch after (one), 1 at the end.
    # 0: before anything; 1: evaluating before; 4: after a training step; 8: evaluating after; 9: before storing.
    for after_calls in (0, 1, 4, 8, 9):
        calls: list[Any] = []

        def cancel(limit: int = after_calls, calls: list[Any] = calls) -> bool:
            calls.append(1)
            return len(calls) > limit

        with pytest.raises(memcubed.Cancelled):
            store.alice.consolidate([store.facts[0].id], lm=store.lm, config={**FAST, "early_stop": False},
                                    control=[], should_cancel=cancel)  # the counts above assume every epoch
    assert raw_counts(store.path) == counts
    assert sorted(p.name for p in Path(f"{store.path}.blobs").rglob("*") if p.is_file()) == blobs


def test_archive_drops_the_adapter_and_loses_nothing(store: Store) -> None:
    alice, mc = store.alice, store.mc
    extra = alice.add("Brannoc the tailor sews with purple thread.")
    weak = {**FAST, "epochs": 1, "recall_min": 0.0}  # one epoch recalls little: served anyway, to be archived
    one = alice.consolidate([extra.id, store.facts[1].id], lm=store.lm, config=weak, control=[])
    assert one.payload is not None
    texts = {f.id: alice.get(f.id).text for f in [*store.facts, extra]}
    alice.delete(extra.id)  # the plaintext was dropped once it lived in the adapter
    archived = alice.archive(one.id)
    assert archived.kind is CubeKind.PARAMETER and archived.state is CubeState.ARCHIVED and archived.payload is None
    assert archived.meta["evaluation"] == one.meta["evaluation"] and archived.derived_from == one.derived_from
    assert not mc.kernel.blobs.exists(one.payload.sha256)
    restored = alice.get(extra.id)
    assert restored.state is CubeState.ACTIVE and restored.text == texts[extra.id]
    assert {f.id: alice.get(f.id).text for f in [*store.facts, extra]} == texts
    assert mc.search("purple thread", mode="lexical").hits[0].cube.id == extra.id
    assert [r.op for r in mc.audit(cube_id=one.id)] == ["consolidate", "stale", "archive"]  # deleting a source stales
    assert [r.op for r in mc.audit(cube_id=extra.id)] == ["add", "delete", "restore"]
    assert mc.get(store.cube.id).state is CubeState.ACTIVE  # the other adapter trained on fact 1 is untouched
    assert alice.archive(one.id).version == archived.version  # already archived: unchanged
    with pytest.raises(memcubed.Conflict):
        alice.generate_with_adapters("Where?", [one.id], lm=store.lm)
    assert mc.verify_audit().ok


def test_forgetting_a_fact_stales_and_purges_the_adapter_and_a_retrain_no_longer_recalls_it(store: Store) -> None:
    alice, mc, cube = store.alice, store.mc, store.cube
    baseline = store.ask(alice, 0, [])
    assert recalled("Cusco", store.ask(alice, 0, [cube.id])) and not recalled("Cusco", baseline)
    alice.forget(store.facts[0].id)
    stale = mc.get(cube.id)
    assert stale.state is CubeState.STALE and stale.payload is None
    assert cube.payload is not None and not mc.kernel.blobs.exists(cube.payload.sha256)
    server = mc.kernel._adapter_server(store.lm)
    with pytest.raises(memcubed.Conflict):  # a stale adapter is never loaded
        store.ask(alice, 0, [cube.id])
    store.ask(alice, 1, [])  # any request drops adapters whose blob was purged
    assert cube.payload.sha256 not in server.loaded
    fresh = alice.recompile(cube.id, lm=store.lm, control=CONTROL)
    assert fresh.id == cube.id and fresh.version == stale.version + 1 and fresh.state is CubeState.ACTIVE
    assert {r.id for r in fresh.derived_from} == {store.facts[1].id, store.facts[2].id}
    assert fresh.meta["dropped"] == [store.facts[0].id] and fresh.payload != cube.payload
    assert not recalled("Cusco", store.ask(alice, 0, [cube.id]))  # back to the untrained baseline: not recalled
    assert recalled("blue marbles", store.ask(alice, 1, [cube.id]))
    assert recalled("Pepper", store.ask(alice, 2, [cube.id]))
    content_ops = [r.op for r in mc.audit(cube_id=cube.id) if r.op not in ("share", "revoke", "denied")]
    assert content_ops == ["consolidate", "purge", "recompile"]
    alice.update(store.facts[2].id, text="Kestrin the poet owns a goat called Saffron.",
                 meta={"qa": [{"question": FACTS[2][1], "answer": "Saffron"}]})
    assert mc.get(cube.id).state is CubeState.STALE  # an update stales it too (payload kept)
    alice.forget(store.facts[1].id)
    alice.forget(store.facts[2].id)
    with pytest.raises(memcubed.ValidationError):  # nothing left to train on: archive it instead
        alice.recompile(cube.id, lm=store.lm)
    assert mc.verify_audit().ok


def test_a_source_or_the_cube_changing_during_training_is_a_conflict(
    store: Store, raw_counts: Callable[[Path], dict[str, int]]
) -> None:
    alice = store.alice
    fact = alice.add("Sulvey the diver found a silver compass.")
    changed: list[str] = []
    config = {**FAST, "epochs": 1, "statement_splits": [0.5], "recall_min": 0.0}  # no questions: its statement

    def change_source() -> bool:  # runs between training steps, like a concurrent writer
        if not changed:
            changed.append(alice.update(fact.id, importance=0.9).id)
        return False

    blobs = sorted(p.name for p in Path(f"{store.path}.blobs").rglob("*") if p.is_file())
    with pytest.raises(memcubed.Conflict):
        alice.consolidate([fact.id], lm=store.lm, config=config, control=[], should_cancel=change_source)
    assert sorted(p.name for p in Path(f"{store.path}.blobs").rglob("*") if p.is_file()) == blobs
    par = alice.consolidate([fact.id], lm=store.lm, config=config, control=[])
    counts = raw_counts(store.path)

    def change_cube() -> bool:
        if len(changed) == 1:
            changed.append(alice.update(par.id, tags=["busy"]).id)  # a share would not conflict: not content
        return False

    with pytest.raises(memcubed.VersionConflict):
        alice.recompile(par.id, lm=store.lm, control=[], should_cancel=change_cube)
    assert raw_counts(store.path)["cube_versions"] == counts["cube_versions"] + 1  # only the tag update
    assert par.payload is not None and store.mc.kernel.blobs.exists(par.payload.sha256)
    alice.update(fact.id, text="Sulvey the diver found a golden compass.")
    again = alice.recompile(par.id, lm=store.lm, control=[])  # trained on the new text; the old blob is released
    assert again.payload is not None and again.payload != par.payload and again.state is CubeState.ACTIVE
    assert store.mc.kernel.blobs.exists(again.payload.sha256) and not store.mc.kernel.blobs.exists(par.payload.sha256)


def test_consolidate_runs_as_a_job_with_progress(store: Store) -> None:
    fact = store.alice.add("Morrow the baker sells rye bread on Sundays.",
                           meta={"qa": [{"question": "What does Morrow the baker sell?", "answer": "rye bread"}]})
    with pytest.raises(memcubed.ValidationError):
        store.alice.submit_job("consolidate", cube_ids=[fact.id], config={"rank": -1})
    with pytest.raises(memcubed.NotFound):
        store.mc.as_principal("bob").submit_job("consolidate", cube_ids=[fact.id])
    job = store.alice.submit_job("consolidate", cube_ids=[fact.id], config=FAST, control=CONTROL)
    (done,) = store.alice.run_jobs()
    assert done.id == job.id and done.state is memcubed.JobState.SUCCEEDED, done.error
    assert done.total > 0 and done.done == done.total
    cube = store.alice.get(done.result["cube_id"])  # type: ignore[index]
    assert cube.kind is CubeKind.PARAMETER and [r.id for r in cube.derived_from] == [fact.id]
    assert done.result["facts_after"] == cube.meta["evaluation"]["facts"]["after"]  # type: ignore[index]
