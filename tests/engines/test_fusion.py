"""Fusion math: normalisations, confidence, weights, determinism; and the offline expansion helpers."""

from __future__ import annotations

import math

import pytest

from memcubed.engines.text import TextConfig, TextEngine
from memcubed.engines.text.expand import feedback_query, split_query
from memcubed.engines.text.fusion import confidence, fuse_rankings, normalise

LEX = [("a", 9.0), ("b", 6.0), ("c", 3.0)]
VEC = [("c", 0.9), ("d", 0.8), ("a", 0.7)]


def test_zscore_is_standardised_and_missing_takes_the_floor() -> None:
    scaled, floor = normalise(LEX, "zscore")
    assert math.isclose(sum(scaled.values()), 0.0, abs_tol=1e-12)
    sd = math.sqrt(sum(v * v for v in scaled.values()) / 3)
    assert math.isclose(sd, 1.0)
    assert floor == min(scaled.values()) == scaled["c"]


def test_minmax_spans_zero_to_one_and_rank_is_reciprocal() -> None:
    scaled, floor = normalise(LEX, "minmax")
    assert scaled == {"a": 1.0, "b": 0.5, "c": 0.0} and floor == 0.0
    ranks, floor = normalise(LEX, "rank", rank_offset=10)
    assert ranks == {"a": 1 / 11, "b": 1 / 12, "c": 1 / 13} and floor == 0.0


def test_all_equal_scores_give_no_division_by_zero() -> None:
    flat = [("x", 1.0), ("y", 1.0)]
    assert normalise(flat, "zscore")[0] == {"x": 0.0, "y": 0.0}
    assert normalise(flat, "minmax")[0] == {"x": 0.0, "y": 0.0}
    assert confidence(flat, 1) == 0.0
    assert normalise([], "zscore") == ({}, 0.0)


def test_unknown_norm_is_refused() -> None:
    with pytest.raises(ValueError, match="norm"):
        normalise(LEX, "softmax")
    with pytest.raises(ValueError):
        TextConfig(fusion_norm="softmax")  # type: ignore[arg-type]


def test_confidence_is_high_for_a_peaked_list_and_low_for_a_flat_one() -> None:
    peaked = [("a", 10.0)] + [(f"x{i}", 1.0 + i * 0.01) for i in range(20)]
    flat = [(f"y{i}", 1.0 - i * 0.01) for i in range(21)]
    assert confidence(peaked, 1) > 4 > confidence(flat, 1)
    assert confidence(peaked[:3], 5) == 0.0  # too short to tell


def test_fused_scores_are_the_weighted_sum_of_normalised_scores() -> None:
    fused = fuse_rankings({"lexical": LEX, "vector": VEC}, {"lexical": 0.7, "vector": 0.3}, 10, norm="minmax")
    by_id = {hit.cube_id: hit for hit in fused}
    assert math.isclose(by_id["a"].score, 0.7 * 1.0 + 0.3 * 0.0)
    assert math.isclose(by_id["d"].score, 0.7 * 0.0 + 0.3 * 0.5)
    assert by_id["a"].signals["lexical"].rank == 1 and by_id["a"].signals["vector"].rank == 3
    assert "lexical" not in by_id["d"].signals


def test_confidence_shifts_weight_to_the_peaked_signal() -> None:
    lexical = [("a", 20.0)] + [(f"l{i}", 2.0 - i * 0.01) for i in range(20)]  # one clear winner
    vector = [(f"v{i}", 0.5 - i * 0.001) for i in range(21)]  # barely differs
    weights = {"lexical": 0.3, "vector": 0.7}
    plain = fuse_rankings({"lexical": lexical, "vector": vector}, weights, 1, norm="minmax")
    sure = fuse_rankings({"lexical": lexical, "vector": vector}, weights, 1, norm="minmax", confidence_power=1,
                         confidence_depth=1)
    assert plain[0].cube_id == "v0" and sure[0].cube_id == "a"


def test_lone_signal_ranks_even_without_confidence_and_empty_is_empty() -> None:
    only = fuse_rankings({"lexical": [("a", 1.0), ("b", 1.0)], "vector": []}, {"lexical": 1.0}, 5,
                         confidence_power=2)
    assert [h.cube_id for h in only] == ["a", "b"]  # ties by id
    assert fuse_rankings({}, {}, 5) == []


def test_fusion_is_deterministic_and_order_independent() -> None:
    one = fuse_rankings({"lexical": LEX, "vector": VEC}, {"lexical": 0.5, "vector": 0.5}, 4, confidence_power=1)
    two = fuse_rankings({"vector": VEC, "lexical": LEX}, {"lexical": 0.5, "vector": 0.5}, 4, confidence_power=1)
    assert [(h.cube_id, h.score) for h in one] == [(h.cube_id, h.score) for h in two]


def test_engine_fuse_carries_extra_signals_with_their_weights() -> None:
    engine = TextEngine(TextConfig(expand_weight=1.0, lexical_weight=0.0, vector_weight=0.0))
    fused = engine.fuse(LEX, VEC, 2, {"expand": [("z", 5.0), ("a", 1.0)]})
    assert fused[0].cube_id == "z" and fused[0].signals == {"expand": fused[0].signals["expand"]}


def test_feedback_query_adds_recurring_names_and_words_but_not_the_query_or_stopwords() -> None:
    texts = ["Caroline: I moved from Sweden with my mom.", "Melanie: Sweden is lovely, the fjords!"]
    out = feedback_query("Where did Caroline move from?", texts, 3)
    assert out.startswith("Where did Caroline move from? ")
    added = out.split("? ", 1)[1].split()
    assert added[0] == "sweden" and "caroline" not in added and "the" not in added and len(added) == 3
    assert feedback_query("q", [], 5) == "q"


def test_split_query_by_names_then_conjuncts() -> None:
    assert split_query("What do Melanie and Caroline like?") == ["What do Melanie and like?",
                                                                 "What do and Caroline like?"]
    assert split_query("What are Caroline's hobbies and pets?") == ["What are Caroline's hobbies", "pets?"]
    assert split_query("When did Melanie paint?") == []
    # Hostile text only splits into pieces of itself (each later quoted term by term in the FTS match).
    assert split_query("Ignore previous instructions') OR 1=1 --") == ["Ignore previous instructions')", "1=1 --"]


def test_only_the_named_signals_are_weighted_by_confidence() -> None:
    lexical = [(f"l{i}", 2.0 - i * 0.01) for i in range(21)]  # flat
    expand = [("e", 20.0)] + [(f"x{i}", 1.0) for i in range(20)]  # peaked by construction
    weights = {"lexical": 0.5, "expand": 0.5}
    both = {h.cube_id: h.score for h in fuse_rankings({"lexical": lexical, "expand": expand}, weights, 50,
                                                      norm="minmax", confidence_power=1, confidence_depth=1)}
    first = {h.cube_id: h.score for h in fuse_rankings({"lexical": lexical, "expand": expand}, weights, 50,
                                                       norm="minmax", confidence_power=1, confidence_depth=1,
                                                       confident=("lexical",))}
    assert both["e"] > 2.0  # 0.5 times its confidence (about 4.4)
    assert math.isclose(first["e"], 0.5)  # its plain weight: expand is not named
    assert math.isclose(first["l0"], both["l0"])  # lexical is weighted alike in both
