"""Temporal retrieval on every backend: the times memories name ("yesterday", "last month") are resolved against
their event time, so a question naming that date finds them; time only reorders what the reader may see."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import memcubed


def _said(mc: memcubed.Memcubed, text: str, at: str, chat: str) -> str:
    return mc.add(text, source={"type": "conversation", "uri": chat, "occurred_at": at}).id


def test_a_memory_saying_yesterday_is_found_by_the_date_it_means(lexical: memcubed.Memcubed) -> None:
    group = _said(lexical, "I went to a support group yesterday, it was powerful", "2023-05-08T13:56:00Z", "c1")
    _said(lexical, "I went to the gym and it was powerful", "2023-05-08T14:00:00Z", "c2")
    _said(lexical, "I went to a concert on Saturday", "2023-05-20T10:00:00Z", "c3")
    hits = lexical.search("what did I do on 7 May 2023", k=3, mode="lexical").hits
    assert hits[0].cube.id == group and "when" in hits[0].signals
    assert lexical.get(group).text == "I went to a support group yesterday, it was powerful"  # text unchanged


def test_a_memory_saying_last_month_ranks_for_that_month(lexical: memcubed.Memcubed) -> None:
    moved = _said(lexical, "we moved to Lisbon last month", "2023-06-10T09:00:00Z", "c1")
    _said(lexical, "we moved the sofa", "2023-05-12T09:00:00Z", "c2")  # of May itself, but less on topic
    _said(lexical, "we moved the piano", "2023-08-01T09:00:00Z", "c3")
    hits = lexical.search("where did we move in May 2023", k=3, mode="lexical").hits
    assert {h.cube.id for h in hits if "when" in h.signals} >= {moved}
    assert moved in [h.cube.id for h in hits[:2]]


def test_an_update_re_resolves_against_the_same_event_time(lexical: memcubed.Memcubed) -> None:
    cube = _said(lexical, "I baked bread today", "2023-05-08T13:56:00Z", "c1")
    assert [h.cube.id for h in lexical.search("8 May 2023 bread", mode="lexical").hits] == [cube]
    lexical.update(cube, text="I baked bread yesterday")
    hits = lexical.search("what did I bake on 7 May 2023", mode="lexical").hits
    assert hits[0].cube.id == cube and "when" in hits[0].signals


def test_time_never_boosts_another_readers_memory_into_results(lexical: memcubed.Memcubed) -> None:
    alice, bob = lexical.as_principal("alice"), lexical.as_principal("bob")
    mine = _said(alice, "I played chess", "2023-05-01T10:00:00Z", "a")
    theirs = _said(bob, "I played chess yesterday with the secret club", "2023-05-08T10:00:00Z", "b")
    for query, date in (("chess on 7 May 2023", None), ("chess yesterday", datetime(2023, 5, 8, tzinfo=UTC)),
                        ("the most recent chess game", datetime(2023, 6, 1, tzinfo=UTC))):
        ids = [h.cube.id for h in alice.search(query, k=10, mode="lexical", question_date=date).hits]
        assert theirs not in ids and mine in ids, query
    assert theirs in [h.cube.id for h in bob.search("chess on 7 May 2023", mode="lexical").hits]


@pytest.mark.parametrize("text", ["10000000 days ago I was born", "yesterday " * 2000, "我昨天去了公园",
                                  "'; DROP TABLE cubes; -- last week"])
def test_hostile_time_phrases_are_stored_and_searchable(lexical: memcubed.Memcubed, text: str) -> None:
    cube = _said(lexical, text, "2023-05-08T10:00:00Z", "c")
    assert lexical.get(cube).text == text
    hits = lexical.search("what happened on 7 May 2023", mode="lexical", question_date=datetime(2023, 5, 9,
                                                                                               tzinfo=UTC)).hits
    assert [h.cube.id for h in hits] in ([], [cube])


def test_a_when_question_prefers_the_memory_that_names_the_time(lexical: memcubed.Memcubed) -> None:
    # Padding, so that scores spread; without the time the suggestion ranks first, by a hair.
    for n in range(6):
        _said(lexical, f"the weather was fine and we talked about pottery glazes {n}", "2023-07-01T10:00:00Z", f"p{n}")
    plain = _said(lexical, "you should sign up for a pottery class", "2023-07-03T10:00:00Z", "c1")
    dated = _said(lexical, "Melanie: I joined a pottery class yesterday", "2023-07-03T11:00:00Z", "c2")
    hits = lexical.search("When did Melanie sign up for a pottery class?", k=3, mode="lexical").hits
    assert hits[0].cube.id == dated and plain in [h.cube.id for h in hits]


def test_a_named_window_boosts_but_never_hides(lexical: memcubed.Memcubed) -> None:
    ids = [_said(lexical, f"we played tennis with {who}", at, f"c{n}") for n, (who, at) in enumerate(
        [("Ann", "2023-03-02T10:00:00Z"), ("Bo", "2023-05-10T10:00:00Z"), ("Cy", "2023-07-20T10:00:00Z")])]
    hits = lexical.search("tennis in May 2023", k=3, mode="lexical").hits
    assert hits[0].cube.id == ids[1] and {h.cube.id for h in hits} == set(ids)
