"""Batched evaluation and rehearsal on the real packaged SmolLM2 give what the one-by-one path gives, and
consolidation is sized to the job."""

from __future__ import annotations

from dataclasses import replace

import pytest

from memcubed.backends.models import LocalTransformersLM
from memcubed.engines.lora import QA, Fact, LoRAConfig, LoRAEngine, control_probes, probes
from memcubed.engines.lora.control import CONTROL, REHEARSAL
from memcubed.engines.lora.model import answer_losses, greedy, greedy_batch
from memcubed.errors import Cancelled, ValidationError

FAST = LoRAConfig(rank=8, alpha=16, anchor_weight=1.0, statement_splits=(0.5,), epochs=3, learning_rate=3e-3,
                  rehearsal=2, rehearsal_min=0, rehearsal_tokens=12, answer_slack_tokens=8, eval_batch_size=8)
FACTS = [
    Fact("f1", 1, "Zorvath the inventor was born in Ipswich.",
         (QA("Where was Zorvath the inventor born?", "Ipswich"),)),
    Fact("f2", 1, "Quillan the sculptor keeps a parrot named Biscuit.",
         (QA("What is the name of Quillan the sculptor's parrot?", "Biscuit"),)),
]


def _probes() -> list:  # type: ignore[type-arg]
    # Control probes as another kind: the base model's control results are cached, and this compares computing.
    # Eight prompts of different lengths in batches of 3 (3, 3, 2): padding differs per batch and the last is short.
    return [p for f in FACTS for p in probes(f)] + [replace(p, kind="question") for p in control_probes()[:6]]


def test_batched_evaluation_gives_the_sequential_answers_with_and_without_an_adapter(lm: LocalTransformersLM) -> None:
    engine = LoRAEngine(lm, FAST)
    adapter = engine.train(FACTS).adapter
    outputs = []
    for adapters in ([], [adapter]):
        one = engine.evaluate(_probes(), adapters, batch_size=1)
        seen: list[tuple[int, int]] = []
        batched = engine.evaluate(_probes(), adapters, batch_size=3, progress=lambda d, t, s=seen: s.append((d, t)))
        assert [r.output for r in batched.results] == [r.output for r in one.results]
        assert [r.hit for r in batched.results] == [r.hit for r in one.results]
        assert [r.probe for r in batched.results] == _probes()
        assert max(abs(a.loss - b.loss) for a, b in zip(one.results, batched.results, strict=True)) < 1e-3
        assert seen[-1] == (len(_probes()), len(_probes())) and len(seen) == -(-len(_probes()) // 3) == 3
        outputs.append([r.output for r in one.results])
    assert outputs[0] != outputs[1]  # the adapter was really active in the second round


def test_batched_rehearsal_and_primitives_match_one_at_a_time(lm: LocalTransformersLM) -> None:
    prompts = [lm.chat_ids([{"role": "user", "content": p}]) for p in REHEARSAL[:5]]
    limits = [3, 12, 1, 7, 12]
    alone = [greedy(lm.model, p, eos=lm.eos_token_ids, max_new_tokens=n).token_ids
             for p, n in zip(prompts, limits, strict=True)]
    pad = int(lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0)
    assert greedy_batch(lm.model, prompts, eos=lm.eos_token_ids, limits=limits, pad_id=pad) == alone
    assert all(len(ids) <= n for ids, n in zip(alone, limits, strict=True)) and len(alone[2]) == 1
    engine = LoRAEngine(lm, replace_config(rehearsal=5, rehearsal_tokens=12, eval_batch_size=3))
    texts = [e.answer for e in engine.rehearsal(5)]
    assert texts == [lm.decode(greedy(lm.model, p, eos=lm.eos_token_ids, max_new_tokens=12).token_ids) for p in prompts]
    with pytest.raises(ValidationError):
        greedy_batch(lm.model, [prompts[0], []], eos=lm.eos_token_ids, limits=[1, 1], pad_id=pad)
    with pytest.raises(ValidationError):
        greedy_batch(lm.model, prompts[:2], eos=lm.eos_token_ids, limits=[1], pad_id=pad)
    with pytest.raises(ValidationError):
        answer_losses(lm.model, [(prompts[0], [])], pad_id=pad)


def test_base_control_results_are_remembered_and_cancellation_still_stops(lm: LocalTransformersLM) -> None:
    engine = LoRAEngine(lm, FAST)
    control = control_probes()[:6]
    first = engine.evaluate(control)
    seen: list[tuple[int, int]] = []
    again = engine.evaluate(control, progress=lambda d, t: seen.append((d, t)))
    assert again.results == first.results and seen == [(6, 6)]
    with pytest.raises(Cancelled):
        engine.evaluate(_probes()[:3], should_cancel=lambda: True)


def replace_config(**fields: object) -> LoRAConfig:
    return FAST.model_copy(update=fields)


def test_rehearsal_control_and_steps_scale_with_the_job() -> None:
    config = LoRAConfig()
    assert [config.rehearsal_for(n) for n in (1, 4, 16, 50)] == [8, 16, 64, len(REHEARSAL)]
    assert [config.control_for(n) for n in (1, 10, 16, 50)] == [20, 20, 32, len(CONTROL)]
    assert LoRAConfig(rehearsal=3).rehearsal_for(1) == 3  # the cap wins over the minimum
    with pytest.raises(ValueError):
        LoRAConfig(control_max=len(CONTROL) + 1)
    with pytest.raises(ValueError):
        LoRAConfig(drift_max=-1)
    with pytest.raises(ValueError):
        LoRAConfig(recall_min=1.5)
