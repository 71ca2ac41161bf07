"""Session spreading and the asker stage on every backend: a counting or comparing question sees each session's
best turn before a second turn of one session; a request for advice lifts the asker's own turns; neither stage
ever reveals, or is moved by, a memory the searcher cannot read."""

from __future__ import annotations

import memcubed
from memcubed.engines.text import TextConfig

SPREAD = TextConfig(session_penalty=10.0)  # large: each session's best turn before any second turn
COUNT = "How many guitars do I own?"


def _said(mc: memcubed.Memcubed, text: str, chat: str, minute: int) -> str:
    return mc.add(text, source={"type": "conversation", "uri": chat,
                                "occurred_at": f"2023-05-08T10:{minute:02d}:00Z"}).id


def _order(mc: memcubed.Memcubed, query: str, config: TextConfig) -> list[str]:
    mc.kernel.text.config = config
    return [hit.cube.id for hit in mc.search(query, k=10).hits]


def test_a_counting_question_sees_the_second_session_before_a_second_turn(lexical: memcubed.Memcubed) -> None:
    first = _said(lexical, "I own guitars, guitars and more guitars", "chat:1", 0)
    again = _said(lexical, "guitars guitars: I own them", "chat:1", 1)
    other = _said(lexical, "I just bought guitars from a friend of mine downtown", "chat:2", 0)
    assert _order(lexical, COUNT, TextConfig()) == [first, again, other]  # the control: one session crowds
    assert _order(lexical, COUNT, SPREAD) == [first, other, again]
    lexical.kernel.text.config = SPREAD
    assert any(line.startswith("session: counts") for line in lexical.search(COUNT).explanation)
    # A question with no counting or comparing cue keeps its order, even with the stage weighted.
    assert _order(lexical, "guitars I own", SPREAD) == [first, again, other]


def test_a_comparing_question_is_spread_over_sessions(lexical: memcubed.Memcubed) -> None:
    question = "Which did I do first, the charity gala or the bake sale?"
    gala = _said(lexical, "the charity gala had a bake sale stand, a charity gala to remember", "chat:1", 0)
    gala2 = _said(lexical, "at the charity gala bake sale I met the mayor", "chat:1", 1)
    sale = _said(lexical, "I helped at the bake sale this morning and it went well", "chat:2", 0)
    assert _order(lexical, question, TextConfig()) == [gala, gala2, sale]
    assert _order(lexical, question, SPREAD) == [gala, sale, gala2]
    assert any(line.startswith("session: compares events in time")
               for line in lexical.search(question).explanation)


def test_unreadable_turns_neither_appear_nor_move_the_spread(lexical: memcubed.Memcubed) -> None:
    alice, bob = lexical.as_principal("alice"), lexical.as_principal("bob")
    a1 = _said(alice, "I own guitars, guitars and more guitars", "chat:1", 0)
    a2 = _said(alice, "guitars guitars: I own them", "chat:1", 1)
    a3 = _said(alice, "I just bought guitars from a friend of mine downtown", "chat:2", 0)
    # Bob's turn in Alice's second session, stronger than all of hers: were it counted, it would push a3 down.
    b1 = _said(bob, "guitars guitars guitars guitars I own own", "chat:2", 1)
    alice.kernel.text.config = SPREAD
    result = alice.search(COUNT, k=10)
    assert [hit.cube.id for hit in result.hits] == [a1, a3, a2]
    assert b1 not in {hit.cube.id for hit in result.hits}
    bob.share(b1, "alice")  # the positive control: once readable, it is in a3's session and a3 yields
    assert _order(alice, COUNT, TextConfig()) == [b1, a1, a2, a3]
    assert _order(alice, COUNT, SPREAD) == [b1, a1, a2, a3]


ADVICE = "Can you suggest a hotel for my trip to Miami?"


def test_an_advice_request_lifts_the_askers_own_turns(lexical: memcubed.Memcubed) -> None:
    alice = lexical.as_principal("alice")
    answer = _said(alice, "assistant: for a trip to Miami, a hotel on the beach or a hotel downtown", "chat:1", 0)
    mine = _said(alice, "alice: I prefer a quiet hotel with a pool, wherever I travel", "chat:1", 1)
    log = _said(alice, "user: my budget for the hotel is modest", "chat:2", 0)
    theirs = _said(lexical.as_principal("bob"), "bob: I want a hotel in Miami, trip trip trip", "chat:3", 0)
    assert _order(alice, ADVICE, TextConfig(asker_boost=0.0))[0] == answer  # the control: the long answer first
    lifted = _order(alice, ADVICE, TextConfig(asker_boost=10.0))
    assert set(lifted[:2]) == {mine, log} and lifted[2] == answer and theirs not in lifted
    assert any(line.startswith("asker: asks for advice") for line in alice.search(ADVICE).explanation)
    # Another speaker's turn is not the asker's, even when the asker wrote it down.
    quoted = _said(alice, "bob: a hotel in Miami, for a trip", "chat:4", 0)
    assert _order(alice, ADVICE, TextConfig(asker_boost=10.0)).index(quoted) > 1
    # A question that asks for no advice is left as it is.
    plain = "hotel trip Miami"
    assert _order(alice, plain, TextConfig(asker_boost=10.0)) == _order(alice, plain, TextConfig(asker_boost=0.0))
    # The default lifts them too; an unreadable turn of Bob's, worded as Alice's own, is never shown.
    forged = _said(lexical.as_principal("bob"), "alice: my hotel in Miami for the trip, a hotel trip", "chat:5", 0)
    default = _order(alice, ADVICE, TextConfig())
    assert default.index(mine) < default.index(answer) and forged not in default


FILL = TextConfig(session_slots=3)


def test_a_counting_question_fills_its_first_places_by_session(lexical: memcubed.Memcubed) -> None:
    first = _said(lexical, "I own guitars, guitars and more guitars", "chat:1", 0)
    again = _said(lexical, "guitars guitars: I own them", "chat:1", 1)
    third = _said(lexical, "I own guitars, the guitars I love", "chat:1", 2)
    other = _said(lexical, "I just bought guitars from a friend of mine downtown", "chat:2", 0)
    last = _said(lexical, "a guitar shop opened in town; I may buy guitars there", "chat:3", 0)
    plain = _order(lexical, COUNT, TextConfig())
    assert plain[:3] == [first, again, third] and set(plain[3:]) == {other, last}  # the control: one session crowds
    filled = _order(lexical, COUNT, FILL)
    assert filled[:3] in ([first, other, last], [first, last, other]) and filled[3:] == [again, third]
    lexical.kernel.text.config = FILL
    assert any(line.startswith("session: counts") for line in lexical.search(COUNT).explanation)
    # A question with no counting or comparing cue keeps its order.
    assert _order(lexical, "guitars I own", FILL) == _order(lexical, "guitars I own", TextConfig())
    # The fill reorders the first k only: it never brings a deeper hit in.
    lexical.kernel.text.config = FILL
    assert [h.cube.id for h in lexical.search(COUNT, k=2).hits] == [first, again]


def test_unreadable_turns_neither_appear_nor_take_a_place_in_the_fill(lexical: memcubed.Memcubed) -> None:
    alice, bob = lexical.as_principal("alice"), lexical.as_principal("bob")
    a1 = _said(alice, "I own guitars, guitars and more guitars", "chat:1", 0)
    a2 = _said(alice, "guitars guitars: I own them", "chat:1", 1)
    a3 = _said(alice, "I just bought guitars from a friend of mine downtown", "chat:2", 0)
    # Bob's turn in a session of its own, stronger than all of Alice's: were it counted, it would take a place.
    b1 = _said(bob, "guitars guitars guitars guitars I own own", "chat:3", 0)
    alice.kernel.text.config = TextConfig(session_slots=2)
    result = alice.search(COUNT, k=10)
    assert [hit.cube.id for hit in result.hits] == [a1, a3, a2]
    assert b1 not in {hit.cube.id for hit in result.hits}
    bob.share(b1, "alice")  # the positive control: once readable, its session takes the first place
    assert _order(alice, COUNT, TextConfig(session_slots=2)) == [b1, a1, a2, a3]


COVER = TextConfig(session_cover=2, session_depth=10)


def _cover_case(mc: memcubed.Memcubed) -> dict[str, str]:
    """Session chat:1 crowds the top; chat:2 holds two fair turns, chat:3 one turn about as good as the better of
    them; a weak turn in chat:4 is the list's floor."""
    return {"a1": _said(mc, "I own guitars, guitars and more guitars", "chat:1", 0),
            "a2": _said(mc, "guitars guitars: I own them", "chat:1", 1),
            "a3": _said(mc, "I own guitars, the guitars I love", "chat:1", 2),
            "c1": _said(mc, "guitars I own", "chat:3", 0),
            "d1": _said(mc, "guitars: I own two of them", "chat:2", 0),
            "d2": _said(mc, "guitars: I own two more", "chat:2", 1),
            "z1": _said(mc, "a shop with guitars opened in town next to the bakery and the old cinema on the main"
                        " street", "chat:4", 0)}


def test_a_counting_question_covers_the_best_sessions_by_their_best_two_turns(lexical: memcubed.Memcubed) -> None:
    ids = _cover_case(lexical)
    plain = _order(lexical, COUNT, TextConfig())
    assert plain[:3] == [ids["a1"], ids["a2"], ids["a3"]]  # the control: one session crowds the top
    assert plain.index(ids["c1"]) < plain.index(ids["d1"])  # and chat:3's lone turn leads chat:2's second
    lexical.kernel.text.config = COVER
    covered = [hit.cube.id for hit in lexical.search(COUNT, k=3).hits]
    # chat:2 has the better pair: its best turn, deeper than the first three, is brought in (unlike the fill).
    assert covered == [ids["a1"], ids["d2"], ids["a2"]]
    lone = min(ids["c1"], ids["d2"], key=plain.index)  # by the best turns alone, the two are about level
    assert _order(lexical, COUNT, TextConfig(session_cover=2, session_depth=10, session_score="best"))[:2] == [
        ids["a1"], lone]  # so ranked by its best turn alone, the session whose best ranks first is chosen
    # A question with no counting or comparing cue keeps its order.
    assert _order(lexical, "guitars I own", COVER) == _order(lexical, "guitars I own", TextConfig())


def test_unreadable_turns_do_not_lift_their_session_in_the_cover(lexical: memcubed.Memcubed) -> None:
    alice, bob = lexical.as_principal("alice"), lexical.as_principal("bob")
    ids = _cover_case(alice)
    # Bob's strong turn in Alice's chat:3 session: were it counted, chat:3's best two would beat chat:2's.
    b1 = _said(bob, "guitars guitars guitars I own and bought", "chat:3", 1)
    alice.kernel.text.config = COVER
    covered = [hit.cube.id for hit in alice.search(COUNT, k=3).hits]
    assert covered == [ids["a1"], ids["d2"], ids["a2"]] and b1 not in _order(alice, COUNT, COVER)
    bob.share(b1, "alice")  # the positive control: once readable, it lifts chat:3 and is shown
    alice.kernel.text.config = COVER
    shared = [hit.cube.id for hit in alice.search(COUNT, k=3).hits]
    assert b1 in shared and ids["d2"] not in shared
