"""Speaker focus: a named person's own turns rise; other hits keep their order."""

from __future__ import annotations

from datetime import UTC, datetime

from memcubed.cube.model import MemCube
from memcubed.engines.text.route import route
from memcubed.engines.text.speaker import focus, speaker_of
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
