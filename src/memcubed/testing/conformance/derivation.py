"""Rights flow through derivation, and the system owns what it derived (issue 12, defects 1–3), on the
real packaged model: an activation cube is usable only by whoever may read every source it encodes,
checked at use time; users cannot rewrite derived cubes or link to cubes they cannot read; a share
never invalidates compiled KV."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import memcubed
from memcubed import CubeState, MemCube
from memcubed.backends.models import LocalTransformersLM
from memcubed.engines.kvcache import CubeText

SECRET = "The vault code is 7391, kept by Mirela."
PUBLIC = "The office opens at nine every weekday."


@pytest.fixture
def alice(mc: memcubed.Memcubed) -> memcubed.Memcubed:
    return mc.as_principal("alice")


def test_a_shared_activation_cube_is_useless_without_its_sources(
    mc: memcubed.Memcubed, alice: memcubed.Memcubed, lm: LocalTransformersLM
) -> None:
    secret, public = alice.add(SECRET), alice.add(PUBLIC)
    act = alice.cache([secret.id, public.id], lm=lm)
    alice.share(act.id, "bob", "share")  # the activation cube, not its sources
    bob, carol = mc.as_principal("bob"), mc.as_principal("carol")
    calls: dict[str, Callable[[memcubed.Memcubed], Any]] = {
        "generate": lambda who: who.generate("The vault code is", activation_id=act.id, lm=lm, max_new_tokens=4),
        "chat": lambda who: who.chat("What is the vault code?", activation_id=act.id, lm=lm, max_new_tokens=4),
    }
    for name, call in calls.items():
        with pytest.raises(memcubed.AccessDenied):
            call(bob)
        assert name  # each path refuses the same way
    alice.share(public.id, "bob")
    with pytest.raises(memcubed.AccessDenied):  # one source short is still refused
        calls["generate"](bob)
    alice.share(secret.id, "bob")
    assert calls["generate"](bob).injected == [act.id] and calls["chat"](bob).used
    bob.share(act.id, "carol")  # bob passes the cube on; carol reads no source
    with pytest.raises(memcubed.AccessDenied):
        calls["generate"](carol)
    alice.revoke(secret.id, "bob")  # acts at once on the derived cube too
    for call in calls.values():
        with pytest.raises(memcubed.AccessDenied):
            call(bob)
    alice.share(secret.id, "bob")
    alice.delete(secret.id)
    with pytest.raises((memcubed.AccessDenied, memcubed.Conflict)):
        calls["generate"](bob)
    assert alice.get(act.id).state is CubeState.STALE


def test_users_cannot_write_what_the_system_owns(
    mc: memcubed.Memcubed, alice: memcubed.Memcubed, lm: LocalTransformersLM
) -> None:
    source = alice.add(PUBLIC)
    act = alice.cache([source.id], lm=lm)
    change: dict[str, Any]
    for change in ({"text": "forged"}, {"meta": {"segments": []}}, {"source": {"type": "api"}}):
        with pytest.raises(memcubed.ValidationError):
            alice.update(act.id, **change)
    with pytest.raises(memcubed.ValidationError):  # state is not a user field on any cube
        alice.update(source.id, state="active")
    tagged = alice.update(act.id, tags=["hot"], importance=0.9)
    assert tagged.tags == ["hot"] and tagged.segments == act.segments
    alice.update(source.id, text="The office opens at ten.")
    stale = alice.get(act.id)
    assert stale.state is CubeState.STALE
    with pytest.raises(memcubed.ValidationError):
        alice.update(act.id, state="active")
    with pytest.raises(memcubed.Conflict):
        alice.generate("When?", activation_id=act.id, lm=lm, max_new_tokens=2)
    fresh = alice.recompile(act.id, lm=lm)  # the way back from stale, now for activation cubes too
    assert fresh.state is CubeState.ACTIVE and fresh.version == stale.version + 1
    assert [(r.id, r.version) for r in fresh.derived_from] == [(source.id, 2)]
    assert alice.generate("When?", activation_id=act.id, lm=lm, max_new_tokens=2).injected == [act.id]
    assert alice.add("forged", meta={"segments": act.segments}).segments == []  # meta is the user's, not segments


def test_derived_from_needs_read_on_every_source(mc: memcubed.Memcubed, alice: memcubed.Memcubed) -> None:
    theirs = mc.as_principal("bob").add("bob's private note about the merger")
    mine = alice.add(PUBLIC)
    for refs in ([{"id": theirs.id, "version": 1}], [{"id": mine.id, "version": 2}],
                 [{"id": "01a2a0c8-0000-7000-8000-000000000000", "version": 1}]):
        with pytest.raises(memcubed.NotFound):
            alice.add("a fact derived from it", derived_from=refs)
    before = len(mc.audit())
    with pytest.raises(memcubed.NotFound):  # one bad link fails the whole batch
        alice.add_many([{"text": "fine"}, {"text": "linked", "derived_from": [{"id": theirs.id, "version": 1}]}])
    assert len(mc.audit()) == before
    mc.as_principal("bob").share(theirs.id, "alice")
    fact = alice.add("the merger is secret", derived_from=[{"id": theirs.id, "version": 1}])
    alice.share(fact.id, "carol")
    carol = mc.as_principal("carol")
    with pytest.raises(memcubed.AccessDenied):  # the fact's text is its source's content
        carol.get(fact.id)
    assert carol.search("merger secret", mode="lexical").hits == []
    assert fact.id in [h.cube.id for h in alice.search("merger secret", mode="lexical").hits]
    mc.as_principal("bob").revoke(theirs.id, "alice")
    with pytest.raises(memcubed.AccessDenied):
        alice.get(fact.id)
    assert alice.search("merger secret", mode="lexical").hits == []


def test_a_share_or_a_tag_never_invalidates_compiled_kv(
    mc: memcubed.Memcubed, alice: memcubed.Memcubed, lm: LocalTransformersLM
) -> None:
    cubes = [alice.add(text) for text in (PUBLIC, SECRET)]
    first = alice.cache([c.id for c in cubes], lm=lm)
    alice.share(cubes[0].id, "bob")
    alice.update(cubes[1].id, tags=["vault"])
    again = alice.cache([c.id for c in cubes], lm=lm)
    assert (again.meta["reused"], again.meta["computed"]) == (2, 0) and again.segments == first.segments
    texts = [CubeText(id=c.id, version=c.version, text=c.text or "") for c in cubes]
    result = alice.chat("When does the office open?", k=2, lm=lm, max_new_tokens=2)
    assert sorted(result.used) == sorted(t.id for t in texts) and result.reused_tokens == result.prefix_tokens


def test_undelete_and_archive_are_lifecycle_operations(mc: memcubed.Memcubed, alice: memcubed.Memcubed) -> None:
    note = alice.add(PUBLIC)
    alice.share(note.id, "bob", "write")
    bob = mc.as_principal("bob")
    refused: list[Callable[[], MemCube]] = [lambda: bob.archive(note.id), lambda: bob.delete(note.id)]
    for call in refused:  # a write grant covers content only
        with pytest.raises(memcubed.AccessDenied):
            call()
    alice.delete(note.id)
    with pytest.raises(memcubed.NotFound):
        alice.get(note.id)
    back = alice.undelete(note.id)
    assert back.state is CubeState.ACTIVE and alice.get(note.id).text == PUBLIC
    with pytest.raises(memcubed.ValidationError):
        alice.undelete(note.id)  # not deleted
    with pytest.raises(memcubed.ValidationError):
        alice.restore(note.id)  # not archived
    alice.forget(note.id)
    with pytest.raises(memcubed.NotFound):
        alice.undelete(note.id)  # forgotten is final
    # bob's two refused calls are audited too
    assert [r.op for r in mc.audit(cube_id=note.id)] == ["add", "share", "denied", "denied", "delete", "undelete",
                                                         "forget"]
