"""Speaker focus: a named person's own turns rise; other hits keep their order."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from memcubed.cube.model import MemCube
from memcubed.engines.text.route import route
from memcubed.engines.text.speaker import focus, speaker_of, without_speakers
from memcubed.schemas.ops import SearchHit

NOW = datetime(2023, 5, 1, tzinfo=UTC)


def _hit(text: str, score: float) -> SearchHit:
    cube = MemCube(id=text, namespace="n", owner="admin", created_at=NOW, updated_at=NOW, version=1, text=text)
    return SearchHit(cube=cube, score=score, signals={})


def test_speaker_of_reads_the_turn_prefix() -> None:
    assert speaker_of("Melanie: I love pottery") == "melanie"
    assert speaker_of("  Mary Ann : hi") == "mary ann"
    assert speaker_of("no speaker here") is None and speaker_of("") is None
    assert speaker_of("12:30 we met") is None  # a time is no speaker
    assert speaker_of("x" * 100_000 + ": hi") is None


def test_focus_lifts_the_named_speakers_turns() -> None:
    hits = [_hit("Caroline: Melanie, that's great!", 3.0), _hit("Melanie: I signed up for pottery", 2.5),
            _hit("Caroline: I went hiking", 1.0), _hit("Melanie: we went camping", 0.5)]
    lifted = [h.cube.id for h in focus(hits, "Melanie", 1.0)]
    assert lifted[0] == "Melanie: I signed up for pottery"
    assert lifted.index("Caroline: Melanie, that's great!") < lifted.index("Caroline: I went hiking")
    assert [h.cube.id for h in focus(hits, "Melanie", 0.0)] == [h.cube.id for h in hits]
    assert [h.cube.id for h in focus(hits, "Nobody", 5.0)] == [h.cube.id for h in hits]


def test_route_names_the_speaker_only_for_one_person() -> None:
    assert route("What activities does Melanie partake in?").speaker == "Melanie"
    assert route("What do Melanie and Caroline both like?").speaker is None
    assert route("what do i like?").speaker is None


def test_focus_on_several_speakers_lifts_each_of_their_turns() -> None:
    hits = [_hit("assistant: here are ten hotels in Miami", 3.0), _hit("user: I like quiet places", 2.0),
            _hit("alice: my budget is small", 1.0), _hit("bob: I like loud places", 0.9)]
    lifted = [h.cube.id for h in focus(hits, {"user", "Alice"}, 10.0)]
    assert lifted == ["user: I like quiet places", "alice: my budget is small",
                      "assistant: here are ten hotels in Miami", "bob: I like loud places"]
    assert [h.cube.id for h in focus(hits, set(), 10.0)] == [h.cube.id for h in hits]


def test_without_speakers_drops_only_names_that_open_a_turn() -> None:
    texts = ["Melanie: I play the clarinet", "Caroline: Melanie, that's great!", "user: Rachel got married"]
    assert without_speakers("What instruments does Melanie play?", ["Melanie"], texts) == (
        "What instruments does play?", ["Melanie"])
    assert without_speakers("What are Melanie's pets' names?", ["Melanie"], texts)[0] == "What are pets' names?"
    both = without_speakers("What do Melanie and Caroline both like?", ["Melanie", "Caroline"], texts)
    assert both == ("What do and both like?", ["Melanie", "Caroline"])
    # A name no turn opens with is a topic (a friend, a city), not a speaker: it stays.
    assert without_speakers("When did Rachel get married?", ["Rachel"], texts) == (
        "When did Rachel get married?", [])
    assert without_speakers("Where is Melanie?", ["Melanie"], []) == ("Where is Melanie?", [])
    # Nothing but the name would be left: the query stays as it is.
    assert without_speakers("Melanie?", ["Melanie"], texts) == ("Melanie?", [])


def test_without_speakers_takes_hostile_names_as_plain_text() -> None:
    texts = ["J.R: hello", "a.*b: hello", "(x: hi", "Melanie: ok"]
    # A name's characters are matched literally: "J.R" does not take "JxR" with it.
    assert without_speakers("What did JxR and J.R say?", ["J.R"], texts) == ("What did JxR and say?", ["J.R"])
    # Text that cannot open a turn is never a speaker, whatever its characters.
    assert without_speakers("tell me about a.*b and (x now", ["a.*b", "(x"], texts) == (
        "tell me about a.*b and (x now", [])
    long = "Melanie " + "word " * 20_000
    left, found = without_speakers(long, ["Melanie"], texts)
    assert found == ["Melanie"] and left == " ".join(["word"] * 20_000)


@settings(max_examples=200, deadline=None)
@given(query=st.text(max_size=80), name=st.from_regex(r"[A-Z][a-z]{2,8}", fullmatch=True),
       spoken=st.booleans())
def test_without_speakers_never_leaves_a_dropped_name(query: str, name: str, spoken: bool) -> None:
    question = f"What does {name} like {query}"
    texts = [f"{name}: hi"] if spoken else [f"other: {name} hi"]
    left, found = without_speakers(question, [name], texts)
    if not spoken:
        assert (left, found) == (question, [])
    else:
        assert found == [name] and not re.search(rf"\b{name}\b", left, re.IGNORECASE)
        assert left == " ".join(left.split())
