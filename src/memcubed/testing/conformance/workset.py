"""The working set: one exact KV prefix per (principal, namespace) that ``chat`` leads with, served only
while every member is unchanged and readable by its principal (the packaged SmolLM2 answers)."""

from __future__ import annotations

import pytest

import memcubed
from memcubed.backends.models import LocalTransformersLM
from memcubed.cube.model import CubeKind, CubeState
from memcubed.engines.kvcache import MEMORY_NOTICE, CubeText, KVCacheEngine, with_notice
from memcubed.settings import Settings
from memcubed.testing.conformance.fixtures import OpenMc

FACTS = ["The spare key is hidden under the blue flower pot by the door.",
         "Quokka the cat sleeps on the red sofa every afternoon.",
         "The wifi password is written on the back of the router.",
         "The bicycle is locked to the fence behind the bakery."]
QUESTION = "Where is the bicycle locked?"


@pytest.fixture
def alice(mc: memcubed.Memcubed) -> memcubed.Memcubed:
    return mc.as_principal("alice")


@pytest.fixture
def facts(alice: memcubed.Memcubed) -> list[str]:
    return [alice.add(text).id for text in FACTS]


def test_set_reuse_replace_and_clear(alice: memcubed.Memcubed, lm: LocalTransformersLM, facts: list[str]) -> None:
    assert alice.working_set().cube is None and alice.clear_working_set().cube is None  # none: nothing to do
    ws = alice.set_working_set([facts[1], facts[0]], lm=lm)
    assert ws.cube is not None and ws.usable and ws.members == sorted(facts[:2])
    assert ws.cube.kind is CubeKind.ACTIVATION and ws.cube.source.uri == "working-set" and ws.cube.owner == "alice"
    assert ws.tokens == ws.cube.meta["tokens"] > 20 and len(ws.cube.segments) == 2
    assert alice.working_set().cube == ws.cube
    assert alice.set_working_set(facts[:2], lm=lm).cube == ws.cube  # same members and versions: kept as is
    other = alice.set_working_set(facts[1:3], lm=lm)
    assert other.cube is not None and other.cube.id != ws.cube.id
    old = alice.get(ws.cube.id)
    assert old.state is CubeState.ARCHIVED and old.segments == []  # the replaced one is archived
    assert [r.op for r in alice.audit(cube_id=old.id)] == ["working_set.set", "working_set.set"]
    cleared = alice.clear_working_set()
    assert cleared.cube is not None and cleared.cube.state is CubeState.ARCHIVED and not cleared.usable
    assert alice.working_set().cube is None
    assert alice.chat(QUESTION, lm=lm, k=1, max_new_tokens=2).working_set_id is None


def test_chat_leads_with_the_working_set_and_loads_its_kv(
        alice: memcubed.Memcubed, lm: LocalTransformersLM, facts: list[str]) -> None:
    ws = alice.set_working_set(facts[:2], lm=lm)
    assert ws.cube is not None
    result = alice.chat(QUESTION, lm=lm, k=2, max_new_tokens=4)
    assert result.via == "kv" and result.working_set_id == ws.cube.id
    extras = result.used[2:]
    assert result.used[:2] == ws.members and facts[3] in extras and extras == sorted(extras)
    assert not set(extras) & set(ws.members)  # a hit already in the working set is not repeated
    assert result.reused_tokens == ws.tokens and result.computed_tokens == result.prefix_tokens - ws.tokens > 0
    plain = alice.chat(QUESTION, lm=lm, k=2, max_new_tokens=4, use_working_set=False)
    assert plain.working_set_id is None and facts[3] in plain.used
    assert plain.used == sorted(plain.used)  # plain retrieval: canonical order (a shared head still reuses KV)
    # k=0 searches nothing; the working set still leads, all of it served from stored KV.
    only = alice.chat(QUESTION, lm=lm, k=0, max_new_tokens=2)
    assert only.used == ws.members and only.reused_tokens == only.prefix_tokens == ws.tokens
    assert only.computed_tokens == 0


def test_the_working_set_from_stored_kv_answers_exactly_as_recomputing_everything(
        alice: memcubed.Memcubed, lm: LocalTransformersLM, facts: list[str]) -> None:
    alice.set_working_set([facts[0], facts[2]], lm=lm)
    result = alice.chat(QUESTION, lm=lm, k=2, max_new_tokens=16)
    assert result.reused_tokens > 0 and result.computed_tokens > 0
    # Everything recomputed: the same memories in the same order, read in one pass with no stored KV.
    texts = [CubeText.of(alice.get(cube_id)) for cube_id in result.used]
    ids = [t for segment in KVCacheEngine(lm).compile(texts) for t in segment.token_ids]
    turns = with_notice([{"role": "user", "content": QUESTION}], MEMORY_NOTICE)
    reread = lm.greedy([*ids, *lm.chat_ids(turns)], max_new_tokens=16)
    assert len(ids) == result.prefix_tokens
    assert result.text == reread.text.strip()


def test_another_principals_working_set_is_never_used(mc: memcubed.Memcubed, lm: LocalTransformersLM,
                                                      alice: memcubed.Memcubed, facts: list[str]) -> None:
    bob = mc.as_principal("bob")
    ws = alice.set_working_set(facts[:2], lm=lm)
    assert ws.cube is not None
    bob.add("Bob keeps his bicycle in the cellar.")
    result = bob.chat(QUESTION, lm=lm, k=3, max_new_tokens=2)
    assert result.working_set_id is None and not set(result.used) & set(facts)
    assert bob.working_set().cube is None and bob.clear_working_set().cube is None
    assert alice.working_set().usable  # bob's clear touched nothing of alice's
    with pytest.raises(memcubed.NotFound):
        bob.set_working_set([facts[0]], lm=lm)
    with pytest.raises(memcubed.NotFound):
        bob.get(ws.cube.id)
    with pytest.raises(memcubed.NotFound):  # the registry's pre-check refuses it too, writing nothing
        mc.kernel.validate_call("set_working_set", {"cube_ids": [facts[0]]}, principal="bob")


def test_a_member_revoked_after_compiling_is_never_served(mc: memcubed.Memcubed, lm: LocalTransformersLM,
                                                         alice: memcubed.Memcubed) -> None:
    bob = mc.as_principal("bob")
    secret = alice.add("Alice's bicycle is locked with the code 9931.")
    alice.share(secret.id, "bob")
    bob.accept_share(secret.id)
    own = bob.add("Bob's bicycle is locked to the lamp post.")
    ws = bob.set_working_set([secret.id, own.id], lm=lm)
    assert ws.cube is not None and bob.chat(QUESTION, lm=lm, k=0, max_new_tokens=2).working_set_id == ws.cube.id
    alice.revoke(secret.id, "bob")
    shown = bob.working_set()
    assert not shown.usable and shown.reason is not None and secret.id in shown.reason
    result = bob.chat(QUESTION, lm=lm, k=3, max_new_tokens=2)
    assert result.working_set_id is None and result.working_set_skipped == shown.reason
    assert secret.id not in result.used and result.used == [own.id]
    own_tokens = len(KVCacheEngine(lm).segment_ids(CubeText.of(own).rendered))
    assert result.prefix_tokens == own_tokens  # the revoked text never reached the model


@pytest.mark.parametrize("change", ["update", "delete", "forget", "archive"])
def test_a_changed_or_gone_member_makes_it_skipped_never_served_stale(
        alice: memcubed.Memcubed, lm: LocalTransformersLM, facts: list[str], change: str) -> None:
    ws = alice.set_working_set(facts[:2], lm=lm)
    assert ws.cube is not None
    if change == "update":
        alice.update(facts[0], text="The spare key now hangs inside the shed.")
    else:
        getattr(alice, change)(facts[0])
    assert not alice.working_set().usable
    result = alice.chat(QUESTION, lm=lm, k=0, max_new_tokens=2)
    assert result.working_set_id is None and result.working_set_skipped and result.used == []
    if change == "update":  # setting it again compiles the new version
        fresh = alice.set_working_set(facts[:2], lm=lm)
        assert fresh.usable and fresh.cube is not None and fresh.cube.id != ws.cube.id
        assert alice.chat(QUESTION, lm=lm, k=0, max_new_tokens=2).working_set_id == fresh.cube.id


def test_a_tag_change_keeps_the_working_set_served(alice: memcubed.Memcubed, lm: LocalTransformersLM,
                                                   facts: list[str]) -> None:
    ws = alice.set_working_set(facts[:2], lm=lm)
    alice.update(facts[0], tags=["moved"])  # a new version, the same text: the compiled KV still holds
    result = alice.chat(QUESTION, lm=lm, k=0, max_new_tokens=2)
    assert ws.cube is not None and result.working_set_id == ws.cube.id and result.reused_tokens == ws.tokens


def test_set_working_set_refuses_bad_members_and_budgets(
        mc: memcubed.Memcubed, alice: memcubed.Memcubed, lm: LocalTransformersLM, facts: list[str],
        open_mc: OpenMc, location: str) -> None:
    act = alice.cache([facts[0]], lm=lm)
    elsewhere = alice.add("a memory of another space", namespace="work")
    pending = mc.as_principal("bob").add("bob shares this, alice has not accepted")
    mc.as_principal("bob").share(pending.id, "alice")
    for bad in ([act.id], [elsewhere.id], [pending.id], [], "not-a-list", ["../etc"], [facts[0], elsewhere.id]):
        with pytest.raises(memcubed.ValidationError):
            alice.set_working_set(bad, lm=lm)
    with pytest.raises(memcubed.Conflict):  # nothing used yet: the default selection has nothing
        alice.set_working_set(lm=lm)
    tight = open_mc(location, settings=Settings(working_set_max_tokens=30, working_set_max_cubes=2))
    with pytest.raises(memcubed.BudgetExceeded):
        tight.as_principal("alice").set_working_set(facts[:2], lm=lm)
    with pytest.raises(memcubed.BudgetExceeded):
        tight.as_principal("alice").set_working_set(facts[:3], lm=lm)
    assert alice.working_set().cube is None  # every refusal left the store as it was


def test_the_default_selection_takes_the_hottest_under_budget(
        alice: memcubed.Memcubed, lm: LocalTransformersLM, facts: list[str]) -> None:
    for _ in range(3):
        alice.search("wifi password router", k=1)
    alice.search("bicycle fence bakery", k=1)
    alice.kernel.flush_events()
    picked = alice.kernel.hottest_members(principal="alice", lm=lm)
    assert picked[0] == facts[2] and facts[3] in picked and facts[1] not in picked
    ws = alice.set_working_set(lm=lm)
    assert ws.members == sorted(picked) and ws.usable
