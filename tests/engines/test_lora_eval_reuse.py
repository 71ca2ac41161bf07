"""Cheaper evaluation on the real packaged SmolLM2, for the same verdicts: a probe stops generating once its hit is
settled (a prefix of the full output, the same hit), losses project only answer positions (the same losses), and
the early-stop check that ends training is the evaluation after it (what evaluating the stored adapter gives)."""

from __future__ import annotations

import math

import pytest

from memcubed.backends.models import LocalTransformersLM
from memcubed.engines.lora import QA, Fact, LoRAConfig, LoRAEngine, control_probes, probes, recalled
from memcubed.engines.lora.model import answer_loss, answer_losses, greedy, greedy_batch
from memcubed.engines.lora.pairs import settled

CONFIG = LoRAConfig(rank=8, alpha=16, anchor_weight=1.0, statement_splits=(0.5,), epochs=6, learning_rate=3e-3,
                    rehearsal=2, rehearsal_min=0, rehearsal_tokens=12, answer_slack_tokens=16, eval_batch_size=8,
                    early_stop_min_epochs=1, drift_max=100.0)
FACTS = [
    Fact("f1", 1, "Zorvath the inventor was born in Ipswich.",
         (QA("Where was Zorvath the inventor born?", "Ipswich"),)),
    Fact("f2", 1, "Quillan the sculptor keeps a parrot named Biscuit.",
         (QA("What is the name of Quillan the sculptor's parrot?", "Biscuit"),)),
]
FACT_PROBES = [p for fact in FACTS for p in probes(fact)]


@pytest.mark.parametrize(("answer", "text", "expected"), [
    ("Paris", "The capital of France is Paris. It is", True),
    ("Paris", "The capital of France is Paris", False),  # the next token may still make it "Parisian"
    ("Paris", "Parisian food is nice", False),
    ("Paris", "Paris-based", False),
    ("Leonardo da Vinci", "It was Leonardo da Vinci, in", True),
    ("Leonardo da Vinci", "It was Leonardo da", False),
    ("the", "the end", True),  # an answer made only of an article is matched as a word
    ("Paris", "", False),
    ("Paris", " Paris", False),
])
def test_settled_means_no_continuation_can_undo_the_hit(answer: str, text: str, expected: bool) -> None:
    assert settled(answer, text) is expected
    if expected:
        for tail in ("", "ian", "-based", "'s", " and Lyon", "\u00e9", "."):
            assert recalled(answer, text + tail)


def test_generation_stopped_at_a_settled_hit_is_a_prefix_with_the_same_hit(lm: LocalTransformersLM) -> None:
    engine = LoRAEngine(lm, CONFIG)
    asked = control_probes()[:12]
    prompts = [engine.encode(p)[0] for p in asked]
    limits = [24] * len(prompts)
    pad, eos = engine._pad, lm.eos_token_ids

    def until(row: int, tokens: list[int]) -> bool:
        return settled(asked[row].answer, lm.decode(tokens))

    full = greedy_batch(lm.model, prompts, eos=eos, limits=limits, pad_id=pad)
    short = greedy_batch(lm.model, prompts, eos=eos, limits=limits, pad_id=pad, until=until)
    alone = [greedy(lm.model, p, eos=eos, max_new_tokens=24, until=lambda _, t, r=r: until(r, t)).token_ids
             for r, p in enumerate(prompts)]
    assert short == alone
    hits = 0
    for probe, whole, cut in zip(asked, full, short, strict=True):
        assert whole[: len(cut)] == cut
        assert recalled(probe.answer, lm.decode(whole)) == recalled(probe.answer, lm.decode(cut))
        hits += recalled(probe.answer, lm.decode(whole))
        if len(cut) < len(whole):  # stopped early only on a hit
            assert recalled(probe.answer, lm.decode(cut))
    assert hits >= 6 and sum(map(len, short)) < sum(map(len, full))  # it saved tokens on real hits


def test_losses_on_answer_positions_only_are_the_full_forward_losses(lm: LocalTransformersLM) -> None:
    engine = LoRAEngine(lm, CONFIG)
    pairs = [engine.encode(p) for p in [*FACT_PROBES, *control_probes()[:6]]]
    batched = answer_losses(lm.model, pairs, pad_id=engine._pad)
    alone = [answer_loss(lm.model, prompt, answer) for prompt, answer in pairs]
    assert batched == pytest.approx(alone, abs=1e-4)


def test_the_stopping_check_is_the_evaluation_of_the_stored_adapter(lm: LocalTransformersLM) -> None:
    engine = LoRAEngine(lm, CONFIG)
    control = control_probes()[:6]
    trained = engine.train(FACTS, control=control)
    assert trained.result.stopped_early and trained.after is not None
    again = engine.evaluate([*FACT_PROBES, *control], [trained.adapter])
    assert [r.probe for r in trained.after.results] == [*FACT_PROBES, *control]
    assert [r.hit for r in trained.after.results] == [r.hit for r in again.results]
    assert [r.output for r in trained.after.results] == [r.output for r in again.results]
    assert all(not math.isnan(r.loss) for r in trained.after.results)
    assert [r.loss for r in trained.after.results] == pytest.approx([r.loss for r in again.results], abs=1e-4)
    # Without an early stop there is no check to reuse: the caller evaluates the adapter itself.
    full = LoRAEngine(lm, LoRAConfig.model_validate({**CONFIG.model_dump(), "early_stop": False, "epochs": 1}))
    assert full.train(FACTS, control=control).after is None
