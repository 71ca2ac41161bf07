"""Query building of the plaintext engine: quoting, stopwords, and pruning common terms by statistics."""

from __future__ import annotations

from pathlib import Path

import memcubed
from memcubed.engines.text import TextEngine


def test_terms_are_quoted_deduplicated_and_stopwords_dropped() -> None:
    engine = TextEngine()
    assert engine.query_terms("What did Caroline say about the \"race\"? Caroline!") == ["caroline", "say", "race"]
    assert engine.build_match('say "x" OR y') == '"say" OR "x" OR "y"'
    assert engine.build_match("what is the") is None


def test_common_terms_only_rank_documents_a_selective_term_matched() -> None:
    engine = TextEngine()
    counts = {"caroline": 400, "lgbtq": 3, "group": 90, "absent": 0}
    assert engine.build_match("caroline lgbtq group", counts=counts, total=1000) == \
        '("lgbtq" OR "group") AND ("caroline" OR "lgbtq" OR "group")'
    # Nothing to prune: all selective, all common, no statistics, or a small index.
    assert engine.build_match("lgbtq group", counts=counts, total=1000) == '"lgbtq" OR "group"'
    assert engine.build_match("caroline", counts=counts, total=1000) == '"caroline"'
    assert engine.build_match("caroline lgbtq", counts={}, total=0) == '"caroline" OR "lgbtq"'
    assert engine.build_match("caroline lgbtq", counts={"caroline": 40, "lgbtq": 1}, total=100) == \
        '"caroline" OR "lgbtq"'
    # A term matching nothing (or unknown to the statistics) selects nothing: never an empty result.
    assert engine.build_match("caroline absent unknown", counts=counts, total=1000) == \
        '"caroline" OR "absent" OR "unknown"'


def test_search_uses_the_store_statistics(open_mc, tmp_path: Path) -> None:
    # Ranked inside FTS5 (no in-process index), where scoring every match of a common term is what costs.
    mc: memcubed.Memcubed = open_mc(tmp_path / "m.db", embedder="none",
                                    settings=memcubed.Settings(lexical_index=False))
    lonely = mc.add("The secret password is PURPLE-ELEPHANT.")
    # Every shared term is in 100% of one document, the others match nothing: still found.
    hits = mc.search("What is the secret password? Answer with the password only.", mode="lexical").hits
    assert [h.cube.id for h in hits] == [lonely.id]
    mc.kernel.text.config.prune_min_documents = 1
    filler = [mc.add(f"Caroline went to the park on day {i}.") for i in range(30)]
    rare = mc.add("The LGBTQ support group meets on Tuesdays.")
    mc.add_many([{"text": f"Caroline and LGBTQ notes {i}", "namespace": "other"} for i in range(40)])
    total, counts = mc.kernel.store.term_counts(["caroline", "lgbtq", "absent"], namespace="default")
    assert total == 32 and counts == {"caroline": 30, "lgbtq": 1, "absent": 0}  # other namespaces never count
    hits = mc.search("Caroline LGBTQ", mode="lexical", k=10).hits
    assert [h.cube.id for h in hits] == [rare.id]  # park visits match only the common name: not scored
    assert {h.cube.id for h in mc.search("Caroline park", mode="lexical", k=50).hits} == {c.id for c in filler}


def test_the_in_process_lexical_index_scores_every_match(open_mc, tmp_path: Path) -> None:
    mc: memcubed.Memcubed = open_mc(tmp_path / "m.db", embedder="none")
    mc.kernel.text.config.prune_min_documents = 1
    filler = [mc.add(f"Caroline went to the park on day {i}.") for i in range(30)]
    rare = mc.add("The LGBTQ support group meets on Tuesdays.")
    assert mc.kernel.store.term_counts(["caroline", "lgbtq"], namespace="default") == (0, {})  # nothing to prune
    mc.kernel.store.warm("default")
    hits = mc.search("Caroline LGBTQ", mode="lexical", k=50).hits
    assert hits[0].cube.id == rare.id and {h.cube.id for h in hits[1:]} == {c.id for c in filler}


def test_acronyms_that_spell_stopwords_are_query_terms_and_irregular_forms_their_lemma() -> None:
    engine = TextEngine()
    assert engine.query_terms("Did my SO go to the US?") == ["socaps", "go", "uscaps"]
    assert engine.query_terms("so did us") == []  # lower case: stopwords
    assert engine.query_terms("What IT job AND car OR NOT") == ["itcaps", "job", "car"]  # operators stay stopwords
    assert engine.query_terms("When Caroline bought a guitar and went") == ["caroline", "buy", "guitar", "go"]
    assert engine.build_match('"SO" OR "x" NEAR(') == '"socaps" OR "x" OR "near"'  # still quoted words only
