"""Batched greedy decoding computes the prompts' shared leading tokens (the chat template's system prompt) once, on
the real packaged SmolLM2, and gives what each prompt gives alone; and training stops on a recall plateau only
when the gate's recall bound already holds.

With an adapter active, the same shared-prefix path is checked by ``test_lora_batch.py``
(``engine.evaluate`` batched against one by one on a trained adapter).
"""

from __future__ import annotations

import pytest

from memcubed.backends.models import LocalTransformersLM
from memcubed.engines.lora import LoRAConfig, LoRAEngine
from memcubed.engines.lora.control import CONTROL
from memcubed.engines.lora.model import MIN_SHARED_PREFIX, common_prefix, greedy, greedy_batch


def _alone(lm: LocalTransformersLM, prompts: list[list[int]], limits: list[int]) -> list[list[int]]:
    return [greedy(lm.model, p, eos=lm.eos_token_ids, max_new_tokens=n).token_ids
            for p, n in zip(prompts, limits, strict=True)]


def test_a_shared_system_prompt_computed_once_gives_each_prompts_own_greedy_output(lm: LocalTransformersLM) -> None:
    pad = int(lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0)
    prompts = [lm.chat_ids([{"role": "user", "content": q}]) for q, _ in CONTROL[:6]]
    shared = common_prefix(prompts)
    assert shared >= MIN_SHARED_PREFIX and shared > len(min(prompts, key=len)) / 2  # most of the prompt
    limits = [8, 3, 8, 1, 6, 8]
    once = greedy_batch(lm.model, prompts, eos=lm.eos_token_ids, limits=limits, pad_id=pad)
    assert once == greedy_batch(lm.model, prompts, eos=lm.eos_token_ids, limits=limits, pad_id=pad,
                                share_prefix=False)
    assert once == _alone(lm, prompts, limits)
    assert any(lm.decode(out).strip() for out in once)
    # Hostile shapes: a prompt that is the others' whole prefix plus one token, the same prompt twice, and a
    # raw-text prompt that shares nothing (the batch falls back to computing every row whole).
    edge = [prompts[0][: shared + 1], prompts[0], prompts[0], lm.encode("The capital of France is")]
    assert common_prefix(edge[:3]) == shared and common_prefix(edge) < MIN_SHARED_PREFIX
    for batch in (edge[:3], edge):
        assert greedy_batch(lm.model, batch, eos=lm.eos_token_ids, limits=[5] * len(batch), pad_id=pad) == \
            _alone(lm, batch, [5] * len(batch))


def test_common_prefix_leaves_every_prompt_a_token_of_its_own() -> None:
    assert common_prefix([[1, 2, 3], [1, 2, 3]]) == 2
    assert common_prefix([[1, 2, 3, 4], [1, 2, 9]]) == 2
    assert common_prefix([[5], [5, 6]]) == 0
    assert common_prefix([[1, 2], [3, 2]]) == 0


@pytest.mark.parametrize(("history", "patience", "expected"), [
    ([0.25, 0.5, 0.75, 0.75, 0.75], 2, True),  # two checks without a rise
    ([0.25, 0.5, 0.75, 0.75], 2, False),  # only one
    ([0.5, 0.5, 0.75, 0.75, 1.0], 2, False),  # still rising
    ([0.25, 0.25, 0.25, 0.25], 2, False),  # flat but below the gate's recall_min: training goes on
    ([0.75, 0.5, 0.5], 2, True),  # fell back: no check beat the best before
    ([0.75, 0.75, 0.75, 0.75], 0, False),  # patience 0: off
])
def test_a_recall_plateau_stops_only_above_the_gates_recall(lm: LocalTransformersLM, history: list[float],
                                                             patience: int, expected: bool) -> None:
    engine = LoRAEngine(lm, LoRAConfig(early_stop_patience=patience, recall_min=0.5))
    assert engine._plateau(history) is expected
