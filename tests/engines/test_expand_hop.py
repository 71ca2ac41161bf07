"""Two-hop chaining's query: the names the first hits mention, not the speakers' turn prefixes."""

from __future__ import annotations

from memcubed.engines.text.expand import hop_query, query_names


def test_hop_query_adds_names_the_hits_mention_best_first() -> None:
    texts = ["Melanie: the kids and I took Ella to see Oscar at the zoo",
             "Melanie: Ella loved the pottery class with Oscar",
             "Caroline: I told Melanie about Sweden"]
    out = hop_query("What do Melanie's kids like?", texts, 3)
    # "Ella" opens the second turn (no name cue there), so Oscar, named in two hits, leads.
    assert out == "What do Melanie's kids like? oscar ella sweden"
    assert hop_query("What do Melanie's kids like?", texts, 1) == "What do Melanie's kids like? oscar"


def test_hop_query_leaves_out_speakers_and_known_names_and_is_idle_without_names() -> None:
    assert hop_query("What did Caroline do?", ["Caroline: I went hiking", "Melanie: nice!"], 5) == \
        "What did Caroline do?"
    assert hop_query("q", [], 5) == "q"
    assert hop_query("q", ["x" * 100_000, "DROP TABLE cubes; --", "\x00"], 5) == "q"


def test_query_names_are_ordered_and_unique() -> None:
    assert query_names("Did Melanie and Caroline see Melanie's dog?") == ["Melanie", "Caroline"]
    assert query_names("") == []
