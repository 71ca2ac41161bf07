"""Entity aliases and the per-query router on every backend: an alias learnt from one memory ("my dog Max")
reaches another ("Max swam in the lake") by role; aliases stay inside their namespace and the searcher's rights,
follow edits and are erased by ``forget``; the search result explains which stages ran and why."""

from __future__ import annotations

import pytest

import memcubed
from memcubed.backends.base import SearchScope
from memcubed.engines.text import TextConfig
from memcubed.schemas.ops import SearchResult

ALIASES = TextConfig(alias_weight=1.0, split_weight=0.3, hop_weight=0.3)
QUESTION = "Where did the dog swim?"
ADMIN = SearchScope(principal="admin", is_admin=True, namespace="default")


@pytest.fixture
def lexical(lexical: memcubed.Memcubed) -> memcubed.Memcubed:
    """The suite's lexical-only client (``fixtures.lexical``: principals alice and bob) with the alias stage on
    (hybrid searches)."""
    lexical.kernel.text.config = ALIASES
    return lexical


def _alias_hits(result: SearchResult) -> set[str]:
    return {hit.cube.id for hit in result.hits if "alias" in hit.signals}


def test_an_alias_finds_a_pet_by_its_role(lexical: memcubed.Memcubed) -> None:
    lexical.add("Melanie: my dog Max is a golden retriever")
    swim = lexical.add("Melanie: Max swam in the lake all afternoon")
    pool = lexical.add("Caroline: I swam at the pool")
    result = lexical.search(QUESTION)
    order = [hit.cube.id for hit in result.hits]
    assert order.index(swim.id) < order.index(pool.id)
    assert swim.id in _alias_hits(result)
    assert "alias: max" in result.explanation
    lexical.kernel.text.config = TextConfig()  # the control: the shorter turn wins without the alias
    order = [hit.cube.id for hit in lexical.search(QUESTION).hits]
    assert order.index(pool.id) < order.index(swim.id)


def test_another_namespaces_aliases_never_reach_a_tenant(lexical: memcubed.Memcubed) -> None:
    lexical.add("my dog Max is a golden retriever", namespace="other")
    lexical.add("Max swam in the lake", namespace="tenant")
    lexical.add("Rex swam in the river", namespace="tenant")
    before = lexical.search(QUESTION, namespace="tenant")
    assert _alias_hits(before) == set() and not any(line.startswith("alias") for line in before.explanation)
    lexical.kernel.text.config = TextConfig()  # the same ranking as with no alias stage at all
    plain = lexical.search(QUESTION, namespace="tenant")
    assert [(h.cube.id, h.score) for h in before.hits] == [(h.cube.id, h.score) for h in plain.hits]
    lexical.kernel.text.config = ALIASES
    rex = lexical.add("our dog Rex loves water", namespace="tenant")  # the positive control: its own alias
    after = lexical.search(QUESTION, namespace="tenant")
    assert "alias: rex" in after.explanation and rex.id in _alias_hits(after)


def test_an_alias_of_an_unreadable_memory_is_not_used(lexical: memcubed.Memcubed) -> None:
    alice, bob = lexical.as_principal("alice"), lexical.as_principal("bob")
    secret = bob.add("my dog Max is a golden retriever")
    alice.add("Max swam in the lake")
    assert "alias: max" not in alice.search(QUESTION).explanation
    bob.share(secret.id, "alice")
    assert "alias: max" in alice.search(QUESTION).explanation


def test_aliases_follow_edits_deletes_and_forget(lexical: memcubed.Memcubed) -> None:
    pet = lexical.add("my dog Max is a golden retriever")
    lexical.add("Max swam in the lake")
    assert "alias: max" in lexical.search(QUESTION).explanation
    lexical.update(pet.id, text="my dog Bella is a golden retriever")
    lines = lexical.search(QUESTION).explanation
    assert "alias: max" not in lines and "alias: bella" in lines
    lexical.delete(pet.id)
    assert not any(line.startswith("alias") for line in lexical.search(QUESTION).explanation)
    lexical.undelete(pet.id)
    assert "alias: bella" in lexical.search(QUESTION).explanation
    lexical.forget(pet.id)
    assert lexical.kernel.store.alias_terms(["dog"], ADMIN, 10) == []


def test_the_router_explains_the_stages_it_chose(lexical: memcubed.Memcubed) -> None:
    lexical.add("Melanie: I love painting sunsets")
    lexical.add("Caroline: I love hiking with friends")
    both = lexical.search("What do Melanie and Caroline both love?")
    assert "split: names Melanie, Caroline" in both.explanation
    assert any(line.startswith("hop: asks for several") for line in both.explanation)
    one = lexical.search("What does Melanie love?")
    assert not any(line.startswith(("split", "hop")) for line in one.explanation)
    lexical.kernel.text.config = ALIASES.model_copy(update={"router": False})
    assert "split: on for every query (router off)" in lexical.search("What does Melanie love?").explanation
    assert lexical.search("What does Melanie love?", mode="lexical").explanation == []  # single signal: no stages
