"""Losses and training steps compute the rows' shared leading tokens (the chat template's system prompt) once, on the
real packaged SmolLM2, and give what computing every row whole gives: the same losses, the same gradients."""

from __future__ import annotations

import pytest

from memcubed.backends.models import LocalTransformersLM
from memcubed.engines.lora import QA, Fact, LoRAConfig, LoRAEngine
from memcubed.engines.lora.control import CONTROL, REHEARSAL
from memcubed.engines.lora.model import MIN_SHARED_PREFIX, answer_loss, answer_losses, common_prefix
from memcubed.engines.lora.pairs import Example, training_pairs
from memcubed.engines.lora.train import Encoded, _anchor_targets, _batch_loss, _groups

CONFIG = LoRAConfig(rank=4, alpha=8, statement_splits=(0.5,))
FACT = Fact("f1", 1, "Zorvath the inventor was born in Ipswich.",
            (QA("Where was Zorvath the inventor born?", "Ipswich"),))


def _pad(lm: LocalTransformersLM) -> int:
    return int(lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0)


def test_losses_with_a_shared_system_prompt_are_each_pairs_own(lm: LocalTransformersLM) -> None:
    engine = LoRAEngine(lm, CONFIG)
    pairs = [engine.encode(Example("", "control", q, a, chat=True)) for q, a in CONTROL[:5]]
    shared = common_prefix([p for p, _ in pairs])
    assert shared >= MIN_SHARED_PREFIX
    # Hostile shapes: a prompt that is the shared prefix plus one token, and a pair twice.
    pairs += [(pairs[0][0][: shared + 1], pairs[0][1]), pairs[1]]
    alone = [answer_loss(lm.model, p, a) for p, a in pairs]
    once = answer_losses(lm.model, pairs, pad_id=_pad(lm))
    whole = answer_losses(lm.model, pairs, pad_id=_pad(lm), share_prefix=False)
    assert once == pytest.approx(alone, rel=1e-5, abs=1e-5) and once == pytest.approx(whole, rel=1e-5, abs=1e-5)
    raw = [(lm.encode("The capital of France is"), lm.encode(" Paris")), pairs[0]]  # nothing shared: computed whole
    expected = [answer_loss(lm.model, *p) for p in raw]
    assert answer_losses(lm.model, raw, pad_id=_pad(lm)) == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_a_training_step_with_the_prefix_computed_once_has_the_same_loss_and_gradients(lm: LocalTransformersLM) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from memcubed.engines.lora.model import twin

    engine = LoRAEngine(lm, CONFIG)
    learnt = [Encoded(*engine.encode(p, eos=True)) for p in training_pairs(FACT, (0.5,))]  # one raw, one chat
    rehearsed = [Encoded(*engine.encode(Example("", "rehearsal", q, "It is a fine question.", chat=True)), anchor=True)
                 for q in REHEARSAL[:2]]
    batch = [rehearsed[0], learnt[0], learnt[1], rehearsed[1]]
    groups = _groups(batch, True)
    assert [(rows, shared > 0) for rows, shared in groups] == [([0, 2, 3], True), ([1], False)]
    targets = _anchor_targets(lm.model, batch, _pad(lm))
    assert sorted(targets) == [0, 3]
    one_by_one = _anchor_targets(lm.model, batch, _pad(lm), batch_size=1)
    assert all(torch.allclose(targets[i], one_by_one[i], atol=1e-5) for i in targets)
    model = get_peft_model(twin(lm.model), LoraConfig(**CONFIG.peft_kwargs()))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.add_(0.01)  # an adapter that changes the prefix's keys and values too
    base = [targets.get(i) for i in range(len(batch))]
    found = []
    for share in (True, False):
        model.zero_grad(set_to_none=True)
        loss = _batch_loss(model, batch, _pad(lm), 3.0, base_logp=base, share_prefix=share)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        found.append((float(loss.detach()), grads))
    (shared_loss, shared_grads), (whole_loss, whole_grads) = found
    assert shared_loss == pytest.approx(whole_loss, rel=1e-5) and shared_loss > 0
    assert shared_grads.keys() == whole_grads.keys() and any(g.abs().sum() > 0 for g in whole_grads.values())
    for name, grad in shared_grads.items():
        assert torch.allclose(grad, whole_grads[name], rtol=1e-3, atol=1e-6), name


def test_rows_are_grouped_only_by_a_long_enough_common_start() -> None:
    chat = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    batch = [Encoded([*chat, 10], [11]), Encoded([20, 21], [22]), Encoded([*chat, 12, 13], [14]),
             Encoded([20, 21], [23])]
    assert _groups(batch, True) == [([0, 2], 9), ([1, 3], 0)]  # two short prompts alike share nothing
    assert _groups(batch, False) == [([0, 1, 2, 3], 0)]
    assert _groups([Encoded([1], [2])], True) == [([0], 0)]
