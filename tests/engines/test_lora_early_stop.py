"""Training to the recall criterion on the real packaged SmolLM2: early stopping ends training only once every
fact probe is recalled, a weak training is never stopped as recalled and the gate still refuses it, and the
base model's anchor targets computed once give the loss computed with the adapter off at every step."""

from __future__ import annotations

import pytest

from memcubed.backends.models import LocalTransformersLM
from memcubed.engines.lora import (
    QA,
    Fact,
    LoRAConfig,
    LoRAEngine,
    control_probes,
    evaluation_record,
    gate,
    probes,
)
from memcubed.engines.lora.pairs import training_pairs

CONFIG = LoRAConfig(rank=8, alpha=16, anchor_weight=1.0, statement_splits=(0.5,), epochs=6, learning_rate=3e-3,
                    rehearsal=2, rehearsal_min=0, rehearsal_tokens=12, answer_slack_tokens=16, eval_batch_size=8,
                    early_stop_min_epochs=1, early_stop_patience=0)
FACTS = [
    Fact("f1", 1, "Zorvath the inventor was born in Ipswich.",
         (QA("Where was Zorvath the inventor born?", "Ipswich"),)),
    Fact("f2", 1, "Quillan the sculptor keeps a parrot named Biscuit.",
         (QA("What is the name of Quillan the sculptor's parrot?", "Biscuit"),)),
]
FACT_PROBES = [p for fact in FACTS for p in probes(fact)]


def _config(**changes: object) -> LoRAConfig:
    return LoRAConfig.model_validate({**CONFIG.model_dump(), **changes})


def test_early_stopping_stops_only_once_every_fact_is_recalled(lm: LocalTransformersLM) -> None:
    engine = LoRAEngine(lm, CONFIG)
    steps: list[tuple[int, int]] = []
    trained = engine.train(FACTS, progress=lambda done, total: steps.append((done, total)))
    result = trained.result
    assert result.stopped_early and result.epochs < CONFIG.epochs
    # One check per epoch from the first on; it stopped at the first that recalled everything, not before.
    assert len(result.recall_checks) == result.epochs
    assert result.recall_checks[-1] == 1.0 and all(check < 1.0 for check in result.recall_checks[:-1])
    assert steps[-1] == (engine.steps(FACTS), engine.steps(FACTS))  # progress ends at its total
    # The stored adapter recalls what the check saw.
    assert engine.evaluate(FACT_PROBES, [trained.adapter]).recall == 1.0
    # Without early stopping the same seed trains the same first epochs, and then every epoch.
    full = LoRAEngine(lm, _config(early_stop=False)).train(FACTS).result
    assert not full.stopped_early and full.epochs == CONFIG.epochs and full.recall_checks == []
    assert full.loss_curve[: result.epochs] == pytest.approx(result.loss_curve, rel=1e-4)


def test_a_weak_training_is_never_stopped_as_recalled_and_the_gate_refuses_it(lm: LocalTransformersLM) -> None:
    weak = _config(learning_rate=1e-5, epochs=3)
    engine = LoRAEngine(lm, weak)
    trained = engine.train(FACTS)
    assert not trained.result.stopped_early and trained.result.epochs == 3
    assert len(trained.result.recall_checks) == 2 and all(check < 1.0 for check in trained.result.recall_checks)
    control = control_probes()[:4]
    before = engine.evaluate([*FACT_PROBES, *control])
    after = engine.evaluate([*FACT_PROBES, *control], [trained.adapter])
    verdict = gate(evaluation_record(before, after, len(FACT_PROBES)), weak)
    assert not verdict["passed"] and "recall" in verdict["reasons"][0]


def test_anchor_targets_computed_once_give_the_loss_with_the_adapter_off(lm: LocalTransformersLM) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from memcubed.engines.lora.model import twin
    from memcubed.engines.lora.train import Encoded, _anchor_targets, _batch_loss

    engine = LoRAEngine(lm, CONFIG)
    pairs = [Encoded(*engine.encode(p, eos=True)) for p in training_pairs(FACTS[0], (0.5,))]
    batch = [pairs[0], *(Encoded(p.prompt, p.answer, anchor=True) for p in pairs)]
    targets = _anchor_targets(lm.model, batch, engine._pad, batch_size=1)  # the base model: no adapter anywhere
    assert sorted(targets) == [1, 2] and targets[1].shape[0] == len(batch[1].answer)
    peft_model = get_peft_model(twin(lm.model), LoraConfig(**CONFIG.peft_kwargs()))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.add_(0.01)
        computed = float(_batch_loss(peft_model, batch, engine._pad, 2.0))
        cached = float(_batch_loss(peft_model, batch, engine._pad, 2.0, base_logp=[targets.get(i) for i in range(3)]))
    assert computed > 0 and cached == pytest.approx(computed, rel=1e-4)
