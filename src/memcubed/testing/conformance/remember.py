"""Conformance: ``remember`` stores turns with provenance and event time, once; facts live in time and their
rights flow from the turns they came from; another principal's memories are never resolved against."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import memcubed
from memcubed.errors import AccessDenied, BudgetExceeded, NotFound, ValidationError
from memcubed.settings import Settings
from memcubed.testing.conformance.fixtures import OpenMc
from memcubed.testing.openai_server import ScriptedChat, serve_openai

__all__ = [
    "test_a_fact_is_served_only_to_who_may_read_its_turns",
    "test_a_repeated_statement_is_a_noop_and_short_or_other_speakers_turns_are_kept",
    "test_another_principals_facts_are_never_resolved_against",
    "test_contradicted_facts_stay_queryable_in_both_times",
    "test_malformed_or_oversized_turns_write_nothing",
    "test_search_ranks_the_time_a_question_names_first",
    "test_the_same_turn_ids_of_another_principal_are_their_own",
    "test_turns_are_stored_once_with_provenance_and_event_time",
]

T0 = datetime(2023, 5, 1, 10, 0, tzinfo=UTC)


def turn(n: int, text: str, *, speaker: str = "Alice", conv: str = "c1", at: datetime | None = None,
         **extra: Any) -> dict[str, Any]:
    """One turn of conversation ``conv`` (turn id ``str(n)``), said ``n`` minutes after T0 unless ``at``."""
    return {"speaker": speaker, "text": text, "conversation_id": conv, "turn_id": str(n),
            "time": at or T0 + timedelta(minutes=n), **extra}


def facts(*items: tuple[str, str, list[str]], **fields: Any) -> str:
    """An extractor answer: (subject, statement, turn keys) per fact."""
    return json.dumps({"facts": [{"subject": s, "statement": st, "turn_ids": keys, **fields}
                                 for s, st, keys in items]})


@contextmanager
def extracting(open_mc: OpenMc, location: str, script: ScriptedChat, **settings: Any) -> Iterator[memcubed.Memcubed]:
    """An admin client whose extractor is ``script`` behind a real OpenAI-compatible server."""
    with serve_openai(chat=script) as url:
        conf = Settings(models={"local": "local", "extractor": "openai:scripted"}, model_base_url=url,
                        extractor="extractor", **settings)
        client = open_mc(location, embedder="none", settings=conf)
        for name in ("alice", "bob"):
            client.create_principal(name)
        yield client


def _cube_count(mc: memcubed.Memcubed, *tags: str) -> int:
    return len(mc.list_cubes(filters={"tags": list(tags), "states": ["active", "deleted"]}, limit=1000))


def test_turns_are_stored_once_with_provenance_and_event_time(mc: memcubed.Memcubed) -> None:
    alice = mc.as_principal("alice")
    result = alice.remember([turn(1, "I adopted a cat named Tom last week.", session_id="s1"),
                             turn(2, "That is lovely, what colour is Tom?", speaker="Bob", role="assistant")])
    assert [t.action for t in result.turns] == ["added", "added"]
    assert result.extracted is False and "no extractor configured" in (result.reason or "")
    assert result.facts == [] and result.summarized is False
    cube = alice.get(result.turns[0].cube_id or "")
    assert cube.text == "Alice: I adopted a cat named Tom last week." and cube.owner == "alice"
    assert (cube.source.type, cube.source.uri, cube.source.ref) == ("conversation", "c1", "1")
    assert cube.source.occurred_at == T0 + timedelta(minutes=1) and cube.created_at > cube.source.occurred_at
    assert cube.tags == ["turn"] and cube.meta == {"speaker": "Alice", "role": "user", "session_id": "s1"}
    records = len(mc.audit())
    again = alice.remember([turn(1, "I adopted a cat named Tom last week."), turn(3, "He is grey.")])
    assert (again.turns[0].action, again.turns[0].cube_id) == ("existing", cube.id)
    assert again.turns[1].action == "added"
    assert [r.op for r in mc.audit()[records:]] == ["add"]  # only turn 3 was written
    # Event time filters find turns by when they were said, not when they were stored.
    said = alice.search("Tom", mode="lexical", filters={"occurred_before": T0 + timedelta(minutes=2)})
    assert [h.cube.id for h in said.hits] == [cube.id]


def test_the_same_turn_ids_of_another_principal_are_their_own(mc: memcubed.Memcubed) -> None:
    mine = mc.as_principal("alice").remember([turn(1, "my locker code is 4417")]).turns[0]
    theirs = mc.as_principal("bob").remember([turn(1, "my locker code is 4417")]).turns[0]
    assert mine.action == theirs.action == "added" and mine.cube_id != theirs.cube_id
    with pytest.raises(NotFound):
        mc.as_principal("bob").get(mine.cube_id or "")
    assert mc.as_principal("bob").search("locker code", mode="lexical").hits[0].cube.id == theirs.cube_id


def test_a_repeated_statement_is_a_noop_and_short_or_other_speakers_turns_are_kept(mc: memcubed.Memcubed) -> None:
    alice = mc.as_principal("alice")
    first = alice.remember([turn(1, "I work as a nurse in Lyon."), turn(2, "ok"), turn(3, "ok"),
                            turn(4, "I work as a nurse in Lyon!", conv="c2")])
    assert [t.action for t in first.turns] == ["added", "added", "added", "noop"]
    assert first.turns[3].duplicate_of == first.turns[0].cube_id
    later = alice.remember([turn(5, "i WORK as a nurse in lyon"), turn(6, "I work as a nurse in Lyon.", speaker="Bob")])
    assert [t.action for t in later.turns] == ["noop", "added"]
    assert _cube_count(alice, "turn") == 4


def test_malformed_or_oversized_turns_write_nothing(open_mc: OpenMc, location: str) -> None:
    mc = open_mc(location, embedder="none", settings=Settings(remember_max_turns=2, max_text_chars=200))
    records = len(mc.audit())
    bad: list[Any] = [
        [turn(1, "fine", at=datetime(2023, 5, 1))],  # naive time
        [turn(1, "   ")],
        [{**turn(1, "fine"), "instructions": "extra field"}],
        [turn(1, "fine\x00nul")],
        [turn(1, "x" * 300)],
        [{**turn(1, "fine"), "turn_id": ""}],
        [],
    ]
    for turns in bad:
        with pytest.raises(ValidationError):
            mc.remember(turns)
    with pytest.raises(BudgetExceeded):
        mc.remember([turn(n, f"turn {n}") for n in range(3)])
    with pytest.raises(ValidationError):
        mc.remember("not a list")  # type: ignore[arg-type]
    assert len(mc.audit()) == records and _cube_count(mc, "turn") == 0
    # A turn repeated in one batch is stored once, as if remembered before.
    twice = mc.remember([turn(1, "fine words here"), turn(1, "other words")])
    assert [t.action for t in twice.turns] == ["added", "existing"] and twice.turns[0].cube_id == twice.turns[1].cube_id
    assert [c.text for c in mc.list_cubes(filters={"tags": ["turn"]})] == ["Alice: fine words here"]


def test_contradicted_facts_stay_queryable_in_both_times(open_mc: OpenMc, location: str) -> None:
    script = ScriptedChat([facts(("Alice", "Alice lives in Paris.", ["t1"])),
                           facts(("Alice", "Alice lives in Berlin.", ["t1"])),
                           '{"action": "contradict", "target": 1}'])
    with extracting(open_mc, location, script) as mc:
        alice = mc.as_principal("alice")
        paris = alice.remember([turn(1, "I live in Paris.", at=T0)]).facts[0]
        known_before = datetime.now(UTC)
        moved = T0 + timedelta(days=30)
        result = alice.remember([turn(2, "I moved to Berlin.", at=moved)])
        berlin = result.facts[0]
        assert (berlin.action, berlin.target) == ("contradict", paris.cube_id) and result.counts["contradict"] == 1
        old, new = alice.get(paris.cube_id or ""), alice.get(berlin.cube_id or "")
        assert (old.valid_from, old.valid_to) == (T0, moved) and (new.valid_from, new.valid_to) == (moved, None)
        assert [h.op for h in alice.history(old.id)] == ["add", "contradict"]

        def lives(**filters: Any) -> list[str]:
            found = alice.search("Alice lives", mode="lexical", filters={"tags": ["fact"], **filters})
            return [h.cube.text or "" for h in found.hits]

        assert lives(true_at=T0 + timedelta(days=1)) == ["Alice lives in Paris."]
        assert lives(true_at=moved + timedelta(days=1)) == ["Alice lives in Berlin."]
        assert sorted(lives()) == ["Alice lives in Berlin.", "Alice lives in Paris."]  # both queryable
        # As known before the move was told, Paris was still open, whenever asked about.
        assert lives(as_known_at=known_before, true_at=moved + timedelta(days=1)) == ["Alice lives in Paris."]
        assert alice.get(old.id, true_at=T0 + timedelta(days=1)).id == old.id
        with pytest.raises(NotFound):
            alice.get(old.id, true_at=moved)
        assert alice.get(old.id, as_of=known_before).valid_to is None


def test_a_fact_is_served_only_to_who_may_read_its_turns(open_mc: OpenMc, location: str) -> None:
    script = ScriptedChat([facts(("Alice", "Alice's locker code is 4417.", ["t1"]))])
    with extracting(open_mc, location, script) as mc:
        alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
        result = alice.remember([turn(1, "My locker code is 4417.")])
        fact_id, turn_id = result.facts[0].cube_id or "", result.turns[0].cube_id or ""
        assert alice.get(fact_id).derived_from[0].id == turn_id
        alice.share(fact_id, "bob")
        bob.accept_share(fact_id)
        with pytest.raises(AccessDenied):
            bob.get(fact_id)
        assert bob.search("locker code", mode="lexical").hits == []
        alice.share(turn_id, "bob")
        assert bob.get(fact_id).text == "Alice's locker code is 4417."
        alice.revoke(turn_id, "bob")
        with pytest.raises(AccessDenied):
            bob.get(fact_id)
        alice.forget(turn_id)  # the fact encodes the turn: it is forgotten with it
        with pytest.raises(NotFound):
            alice.get(fact_id)
        assert [h.cube.text for h in alice.history(fact_id)] == [None, None]


def test_another_principals_facts_are_never_resolved_against(open_mc: OpenMc, location: str) -> None:
    same = facts(("Alice", "Alice lives in Paris.", ["t1"]))
    script = ScriptedChat([same, same])
    with extracting(open_mc, location, script) as mc:
        alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
        theirs = bob.remember([turn(1, "Alice lives in Paris.", speaker="Bob")])
        for cube_id in (theirs.facts[0].cube_id or "", theirs.turns[0].cube_id or ""):
            bob.share(cube_id, "alice", "admin")
            alice.accept_share(cube_id)
        mine = alice.remember([turn(1, "I live in Paris.")]).facts[0]
        # Bob's identical fact is readable by alice, yet hers is added, not a duplicate of (or change to) his.
        assert (mine.action, mine.target) == ("add", None) and mine.cube_id != theirs.facts[0].cube_id
        assert bob.get(theirs.facts[0].cube_id or "").version == 1
        assert all("Bob" not in json.dumps(request) for request in script.received[1:])


def test_search_ranks_the_time_a_question_names_first(mc: memcubed.Memcubed) -> None:
    alice = mc.as_principal("alice")
    dates = [datetime(2023, 3, 2, tzinfo=UTC), datetime(2023, 5, 10, tzinfo=UTC), datetime(2023, 7, 20, tzinfo=UTC)]
    stored = alice.remember([turn(n, f"We had pizza with the {team} team.", at=at)
                             for n, (team, at) in enumerate(zip(["red", "green", "blue"], dates, strict=True))])
    ids = [t.cube_id for t in stored.turns]
    plain = [h.cube.id for h in alice.search("when did we have pizza", k=3).hits]
    asked = datetime(2023, 5, 17, tzinfo=UTC)
    for query, date, expected in (("pizza last week", asked, ids[1]), ("pizza in July 2023", None, ids[2]),
                                  ("pizza in March 2023", asked, ids[0])):
        hits = alice.search(query, k=3, question_date=date).hits
        assert hits[0].cube.id == expected and "when" in hits[0].signals, query
        assert {h.cube.id for h in hits} == set(plain) and all("when" not in h.signals for h in hits[1:])
    # Relative times mean nothing without the question's date: the plain ranking stands.
    assert all("when" not in h.signals for h in alice.search("pizza last week", k=3).hits)
