"""The answer scores of the conversation-memory benchmarks: token-F1, contains-match and abstention."""

from __future__ import annotations

import pytest
from bench.answering import abstains, contains, normalise, spread, stratified, token_f1


def test_token_f1_ignores_case_punctuation_and_articles() -> None:
    assert token_f1("The 7 May, 2023!", "7 may 2023") == 1.0
    assert token_f1("in May 2023", "7 May 2023") == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert token_f1("", "7 May 2023") == token_f1("Paris", "") == token_f1("London", "Paris") == 0.0


def test_contains_needs_the_whole_normalised_answer() -> None:
    assert contains("She moved to New York City last year.", "new york city")
    assert not contains("She moved to New York.", "New York City") and not contains("anything", "...")
    assert normalise("  The  Cat's   hat. ") == "cats hat"


@pytest.mark.parametrize(("reply", "expected"), [
    ("The conversation does not mention it.", True), ("Not mentioned.", True), ("I don't know.", True),
    ("There is no information about that.", True), ("She went to Paris in 2022.", False),
    ("She mentioned Paris.", False),
])
def test_abstains_reads_the_usual_ways_of_saying_the_history_does_not_tell(reply: str, expected: bool) -> None:
    assert abstains(reply) is expected


def test_spread_takes_evenly_spaced_items() -> None:
    assert spread(list(range(10)), 5) == [0, 2, 4, 6, 8] and spread(list(range(3)), 5) == [0, 1, 2]
    assert spread(list(range(7)), None) == list(range(7)) and spread(list(range(7)), 1) == [0]


def test_stratified_takes_the_rare_strata_first_and_every_stratum_evenly() -> None:
    items = [("a", n) for n in range(9)] + [("abs", 9)] + [("b", n) for n in range(10, 20)] + [("abs2", 20)]
    key = lambda item: item[0]  # noqa: E731
    assert stratified(items, 2, key) == [("abs", 9), ("abs2", 20)]
    sample = stratified(items, 6, key)
    # Round by round, rarest stratum first: any prefix of the run covers the strata evenly.
    assert sample == [("abs", 9), ("abs2", 20), ("a", 0), ("b", 10), ("a", 4), ("b", 15)]
    assert stratified(items, 6, key) == sample  # deterministic


def test_stratified_gives_a_full_stratum_s_leftover_to_the_others_and_all_for_no_limit() -> None:
    items = ["x", "y", "y", "y", "y"]
    assert stratified(items, 4, str) == ["x", "y", "y", "y"]
    assert stratified(items, None, str) == items and sorted(stratified(items, 99, str)) == sorted(items)
    assert stratified([], 3, str) == [] and stratified(items, 0, str) == []
