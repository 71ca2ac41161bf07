"""Vocabulary on every backend: acronyms that spell stopwords are words, irregular forms find their lemma."""

from __future__ import annotations

import memcubed


def _texts(mc: memcubed.Memcubed, query: str) -> list[str]:
    return [hit.cube.text or "" for hit in mc.search(query, mode="lexical").hits]


def test_irregular_forms_meet_their_lemma(lexical: memcubed.Memcubed) -> None:
    lexical.add("Caroline bought a new guitar last week")
    lexical.add("Melanie went camping with the children")
    lexical.add("Nate got a turtle")
    assert _texts(lexical, "when did Caroline buy a guitar") == ["Caroline bought a new guitar last week"]
    assert _texts(lexical, "who goes camping with a child") == ["Melanie went camping with the children"]
    assert _texts(lexical, "what did Nate get") == ["Nate got a turtle"]
    assert _texts(lexical, "gotten") == ["Nate got a turtle"]


def test_an_all_caps_acronym_is_no_stopword(lexical: memcubed.Memcubed) -> None:
    so = lexical.add("My SO and I adopted a dog")
    lexical.add("It was so cold, so we stayed in")
    it = lexical.add("She works in IT at the hospital")
    assert [h.cube.id for h in lexical.search("what does my SO like", mode="lexical").hits] == [so.id]
    assert next(h.cube.id for h in lexical.search("who works in IT", mode="lexical").hits) == it.id
    assert lexical.search("so it is", mode="lexical").hits == []  # lower case: stopwords, as before
