"""The kernel's activation-memory operations on the real packaged model: cache, generate, staleness."""

from __future__ import annotations

from typing import Any

import pytest

import memcubed
from memcubed import CubeKind, CubeState
from memcubed.backends.models import LocalTransformersLM, OpenAICompatibleLM
from memcubed.engines.kvcache import CubeText, KVCacheEngine, render_prefix
from memcubed.testing.openai_server import serve_openai

FACTS = ["Quokka the cat sleeps on the red sofa every afternoon.", "The spare key is hidden under the blue pot."]


@pytest.fixture
def cached(mc: memcubed.Memcubed, lm: LocalTransformersLM) -> tuple[list[memcubed.MemCube], memcubed.MemCube]:
    sources = [mc.add(text, tags=["home"]) for text in FACTS]
    return sources, mc.cache([c.id for c in reversed(sources)], lm=lm)


def test_cache_makes_an_activation_cube_from_exact_source_versions(
    mc: memcubed.Memcubed, lm: LocalTransformersLM, cached: tuple[list[memcubed.MemCube], memcubed.MemCube]
) -> None:
    sources, act = cached
    assert act.kind is CubeKind.ACTIVATION and act.state is CubeState.ACTIVE and act.text is None
    assert [(r.id, r.version) for r in act.derived_from] == sorted((s.id, 1) for s in sources)
    assert act.model == lm.fingerprint and act.payload is not None
    assert act.meta["tokens"] > 10 and act.meta["computed"] == 2 and act.meta["reused"] == 0
    assert [r.op for r in mc.audit(cube_id=act.id)] == ["cache"]
    steps: list[tuple[int, int]] = []
    again = mc.cache([s.id for s in sources], lm=lm, progress=lambda done, total: steps.append((done, total)))
    assert steps[-1] == (2, 2)  # same set, any order: every segment is reused
    assert again.meta["reused"] == 2 and again.meta["computed"] == 0
    assert again.segments == act.segments
    assert mc.search("quokka sofa", mode="lexical").hits[0].cube.kind is CubeKind.PLAINTEXT
    half = mc.cache([s.id for s in sources], lm=lm, storage_dtype="bfloat16")
    assert half.meta["storage_dtype"] == "bfloat16" and half.meta["computed"] == 2  # its own prefix tree
    assert abs(half.meta["bytes"] / act.meta["bytes"] - 0.5) < 0.01
    assert mc.generate("Where is the key?", activation_id=half.id, lm=lm, max_new_tokens=2).injected == [half.id]
    with pytest.raises(memcubed.ValidationError):
        mc.cache([s.id for s in sources], lm=lm, storage_dtype="float8")  # type: ignore[arg-type]


def test_generate_with_injected_kv_equals_reading_the_text(
    mc: memcubed.Memcubed, lm: LocalTransformersLM, cached: tuple[list[memcubed.MemCube], memcubed.MemCube]
) -> None:
    _, act = cached
    query = "\n\nQuestion: Where is the spare key hidden? Answer:"
    injected = mc.generate(query, activation_id=act.id, lm=lm, max_new_tokens=8)
    engine = KVCacheEngine(lm)
    stored = engine.load(act.segments, mc.kernel.blobs)
    reread = lm.greedy(engine.query_ids(stored, query), max_new_tokens=8)  # every token read from scratch
    assert injected.text == reread.text and injected.injected == [act.id]
    assert injected.prefix_tokens == act.meta["tokens"] == len(stored.token_ids)


def test_changing_a_source_marks_the_cache_stale_and_it_is_never_injected(
    mc: memcubed.Memcubed, lm: LocalTransformersLM, cached: tuple[list[memcubed.MemCube], memcubed.MemCube]
) -> None:
    sources, act = cached
    mc.update(sources[0].id, text="Quokka the cat now sleeps in the garden.")
    stale = mc.get(act.id)
    assert stale.state is CubeState.STALE and stale.version == 2
    assert [r.op for r in mc.audit(cube_id=act.id)] == ["cache", "stale"]
    with pytest.raises(memcubed.Conflict):
        mc.generate("Where does Quokka sleep?", activation_id=act.id, lm=lm, max_new_tokens=2)
    steps: list[tuple[int, int]] = []
    fresh = mc.cache([s.id for s in sources], lm=lm, progress=lambda done, total: steps.append((done, total)))
    assert {(r.id, r.version) for r in fresh.derived_from} == {(sources[0].id, 2), (sources[1].id, 1)}
    assert steps == [(0, 2), (1, 2), (2, 2)] and fresh.meta["computed"] == 2  # the changed cube leads the chain
    mc.forget(sources[1].id)
    assert mc.get(fresh.id).state is CubeState.STALE
    assert mc.verify_audit().ok


def test_rights_and_bad_input(
    mc: memcubed.Memcubed, lm: LocalTransformersLM, tiny_lm: LocalTransformersLM,
    cached: tuple[list[memcubed.MemCube], memcubed.MemCube],
) -> None:
    sources, act = cached
    bob = mc.as_principal("bob")
    with pytest.raises(memcubed.NotFound):
        bob.cache([sources[0].id], lm=lm)
    with pytest.raises(memcubed.NotFound):
        bob.generate("hi", activation_id=act.id, lm=lm)
    with pytest.raises(memcubed.ValidationError):
        mc.cache([], lm=lm)
    with pytest.raises(memcubed.ValidationError):
        mc.cache([act.id], lm=lm)  # an activation cube is not plaintext
    with pytest.raises(memcubed.ValidationError):
        mc.generate("hi", activation_id=sources[0].id, lm=lm)
    with pytest.raises(memcubed.ConfigurationError):
        mc.generate("hi", activation_id=act.id, lm=tiny_lm)


def test_a_closed_model_gets_the_same_cubes_as_a_byte_stable_prefix(
    mc: memcubed.Memcubed, lm: LocalTransformersLM, cached: tuple[list[memcubed.MemCube], memcubed.MemCube]
) -> None:
    sources, act = cached
    other_order = mc.cache([s.id for s in sources], lm=lm)
    seen: list[dict[str, Any]] = []
    with serve_openai(chat=lm, seen=seen) as url:
        remote = OpenAICompatibleLM("smollm2", base_url=url)
        first = mc.generate("Where is the spare key?", activation_id=act.id, lm=remote, max_new_tokens=8)
        mc.generate("Where is the spare key?", activation_id=other_order.id, lm=remote, max_new_tokens=8)
        remote.close()
    expected = render_prefix(CubeText.of(s) for s in sources)
    assert [body["messages"][0]["content"] for body in seen] == [expected, expected]
    assert first.injected == [act.id] and first.text == lm.complete(seen[0]["messages"], max_new_tokens=8)
    mc.share(act.id, "bob")  # a reader of the activation cube must also read its sources
    with serve_openai(chat=lm) as url, pytest.raises(memcubed.AccessDenied):
        mc.as_principal("bob").generate("Where?", activation_id=act.id, lm=OpenAICompatibleLM("m", base_url=url))


def test_forgetting_a_source_purges_the_kv_that_encodes_it_but_keeps_shared_prefixes(
    mc: memcubed.Memcubed, lm: LocalTransformersLM
) -> None:
    first, second = (mc.add(text) for text in FACTS)  # ids sort in creation order: first leads every chain
    alone = mc.cache([first.id], lm=lm)
    both = mc.cache([first.id, second.id], lm=lm)
    shared, tail = both.segments
    assert alone.segments == [shared]
    blobs = mc.kernel.blobs
    mc.forget(second.id)
    purged = mc.get(both.id)
    assert purged.state is CubeState.STALE and purged.payload is None and purged.segments == []
    assert [r.op for r in mc.audit(cube_id=both.id)] == ["cache", "purge"]
    assert not blobs.exists(tail) and blobs.exists(shared)  # the first cube's segment is still in use
    assert mc.generate("Where does Quokka sleep?", activation_id=alone.id, lm=lm, max_new_tokens=2).injected
    mc.forget(first.id)
    assert not blobs.exists(shared) and mc.get(alone.id).payload is None
    assert mc.verify_audit().ok
