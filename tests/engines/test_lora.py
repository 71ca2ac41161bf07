"""Parameter memory engine on the real packaged model: pairs, training, evaluation, bytes, serving."""

from __future__ import annotations

import pytest

from memcubed.backends.blobs import FileBlobStore
from memcubed.backends.models import LocalTransformersLM
from memcubed.engines.lora import (
    QA,
    Adapter,
    AdapterServer,
    Fact,
    LoRAConfig,
    LoRAEngine,
    Trained,
    cloze,
    control_probes,
    load_adapter,
    normalise,
    probes,
    qa_from_meta,
    recalled,
)
from memcubed.engines.lora.control import CONTROL as CONTROL_SET
from memcubed.engines.lora.control import REHEARSAL
from memcubed.engines.lora.pairs import training_pairs
from memcubed.errors import BudgetExceeded, Cancelled, ConfigurationError, IntegrityError, ValidationError

FAST = LoRAConfig(rank=16, alpha=32, anchor_weight=1.0, statement_splits=(), epochs=6, learning_rate=3e-3,
                  batch_size=4, rehearsal=3, rehearsal_tokens=16, answer_slack_tokens=12)
"""A small schedule for tests (the defaults are for real use; see NOTES.md for their figures)."""

FACTS = [
    Fact("f1", 1, "Zorvath the inventor was born in Ipswich.",
         (QA("Where was Zorvath the inventor born?", "Ipswich"),)),
    Fact("f2", 1, "Quillan the sculptor keeps a parrot named Biscuit.",
         (QA("What is the name of Quillan the sculptor's parrot?", "Biscuit"),)),
    Fact("f3", 1, "Marnek the baker drives a green tractor.",
         (QA("What does Marnek the baker drive?", "green tractor"),)),
]
CONTROL = control_probes()[:4]


@pytest.fixture(scope="module")
def engine(lm: LocalTransformersLM) -> LoRAEngine:
    return LoRAEngine(lm, FAST)


@pytest.fixture(scope="module")
def trained(engine: LoRAEngine) -> Trained:
    return engine.train(FACTS)


def _probes() -> list:  # type: ignore[type-arg]
    return [p for fact in FACTS for p in probes(fact)]


def test_pairs_probes_and_matching() -> None:
    fact = Fact("x", 2, "Melanie painted a lake sunrise last year.", (QA("What did Melanie paint?", "a lake sunrise"),))
    pairs = training_pairs(fact, (0.3, 0.6))
    assert [(p.kind, p.chat) for p in pairs] == [("continuation", False), ("continuation", False), ("question", True)]
    assert pairs[0].prompt == "Melanie painted" and pairs[0].answer == "a lake sunrise last year."
    assert [p.prompt + " " + p.answer for p in pairs[:2]] == [fact.statement] * 2
    assert pairs[2].answer == fact.statement  # the question is answered by the whole sentence that holds the span
    assert training_pairs(fact, (), question_target="answer")[0].answer == "a lake sunrise"
    assert [(p.kind, p.answer) for p in probes(fact)] == [("question", "a lake sunrise")]
    bare = probes(Fact("y", 1, "The spare key is under the blue pot."))
    assert [(p.kind, p.prompt, p.answer) for p in bare] == [("cloze", "The spare key is under", "the blue pot.")]
    probe = cloze("z", "Caroline is researching adoption agencies this summer.", "Adoption agencies")
    assert probe is not None and probe.prompt == "Caroline is researching" and probe.answer == "adoption agencies"
    assert cloze("z", "Caroline paints.", "violin") is None
    assert normalise("The  Green, tractor!") == "green tractor"
    assert recalled("green tractor", "He drives a green tractor.") and not recalled("tractor", "tractors")
    assert qa_from_meta({"qa": [{"question": " Q? ", "answer": "A"}]}) == (QA("Q?", "A"),)
    for bad in ("nope", [{"question": "Q?"}], [{"question": "Q?", "answer": "  "}], [{"question": 1, "answer": "a"}]):
        with pytest.raises(ValidationError):
            qa_from_meta({"qa": bad})


def test_config_names_the_bad_field() -> None:
    for bad in ({"rank": 0}, {"statement_splits": (1.5,)}, {"target_modules": ("q.proj",)}, {"colour": 1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            LoRAConfig(**bad)  # type: ignore[arg-type]
    assert LoRAConfig(target_modules=("v_proj", "q_proj", "q_proj")).target_modules == ("q_proj", "v_proj")
    # Rehearsal prompts never include a control question: the control set measures what rehearsal protects.
    assert not set(REHEARSAL) & {question for question, _ in CONTROL_SET} and len(CONTROL_SET) == 40


def test_training_raises_recall_and_leaves_the_control_set_and_base_model_alone(
    lm: LocalTransformersLM, engine: LoRAEngine, trained: Trained
) -> None:
    weights = lm._weights_sha256()
    before = engine.evaluate(_probes())
    after = engine.evaluate(_probes(), [trained.adapter])
    assert before.hits == 0 and after.hits == len(FACTS), [r.output for r in after.results]
    assert after.mean_loss < before.mean_loss / 5
    assert trained.result.loss_curve[-1] < trained.result.loss_curve[0] / 5 and trained.pairs == len(FACTS)
    control_before = engine.evaluate(CONTROL)
    control_after = engine.evaluate(CONTROL, [trained.adapter])
    assert control_after.hits >= control_before.hits - 1
    # Adapters live in a twin: the shared base model computes exactly what it did.
    assert lm._weights_sha256() == weights
    # Same outputs and hits; the loss to float tolerance (a batch of one and a batch of many sum in another order).
    again, first = engine.evaluate(_probes()[:1]).results[0], before.results[0]
    assert (again.output, again.hit) == (first.output, first.hit)
    assert abs(again.loss - first.loss) < 1e-4


def test_adapter_round_trips_through_the_blob_store_with_identical_outputs(
    tmp_path: object, lm: LocalTransformersLM, engine: LoRAEngine, trained: Trained, tiny_lm: LocalTransformersLM
) -> None:
    blobs = FileBlobStore(f"{tmp_path}/blobs")
    data = engine.dumps(trained.adapter)
    digest = blobs.put(data)
    again = engine.loads(blobs.get(digest))
    assert engine.dumps(again) == data  # byte-stable: equal adapters share one blob
    assert again.config == FAST and again.parameters == trained.adapter.parameters
    server = AdapterServer(lm, slots=2)
    prompt = engine.encode(_probes()[1])[0]
    reloaded = server.generate(prompt, [("reloaded", lambda: again)], max_new_tokens=12)
    original = server.generate(prompt, [("original", lambda: trained.adapter)], max_new_tokens=12)
    assert reloaded.token_ids == original.token_ids and recalled("Biscuit", reloaded.text)
    with pytest.raises(ConfigurationError):
        LoRAEngine(tiny_lm).loads(data)
    with pytest.raises(ConfigurationError):
        LoRAEngine(tiny_lm).evaluate(_probes(), [trained.adapter])
    with pytest.raises(ConfigurationError):
        AdapterServer(tiny_lm).generate([1, 2], [("k", lambda: trained.adapter)])
    with pytest.raises(IntegrityError):
        load_adapter(b"\x08" + b"\x00" * 7 + b"not json", fingerprint=lm.fingerprint)
    with pytest.raises(IntegrityError):
        load_adapter(data.replace(b'"schema_version":"1"', b'"schema_version":"9"'), fingerprint=lm.fingerprint)


def test_server_slots_unload_the_least_recently_used_and_combine_adapters(
    lm: LocalTransformersLM, engine: LoRAEngine, trained: Trained
) -> None:
    import torch

    zero = Adapter(trained.adapter.fingerprint, FAST,
                   {k: torch.zeros_like(v) if "lora_B" in k else v for k, v in trained.adapter.state.items()})
    half = Adapter(trained.adapter.fingerprint, FAST, {k: v * 0.5 for k, v in trained.adapter.state.items()})
    server = AdapterServer(lm, slots=2)
    question = probes(FACTS[0])[0]
    prompt, _ = engine.encode(question)
    base = server.generate(prompt, [], max_new_tokens=12)
    full = server.generate(prompt, [("full", lambda: trained.adapter)], max_new_tokens=12)
    assert recalled("Ipswich", full.text) and not recalled("Ipswich", base.text)
    both = server.generate(prompt, [("full", lambda: trained.adapter), ("zero", lambda: zero)], max_new_tokens=12)
    assert both.token_ids == full.token_ids  # the adapters' updates add up; a zero update changes nothing
    assert server.loaded == ["full", "zero"] and server.loads == 2
    server.generate(prompt, [("full", lambda: trained.adapter)], max_new_tokens=1)  # full is now most recent
    server.generate(prompt, [("half", lambda: half)], max_new_tokens=1)
    assert server.loaded == ["full", "half"] and server.evictions == 1
    with pytest.raises(BudgetExceeded):
        server.generate(prompt, [("a", lambda: zero), ("b", lambda: zero), ("c", lambda: zero)])
    assert server.retain(lambda key: key != "half") == ["half"] and server.loaded == ["full"]
    assert server.generate(prompt, [], max_new_tokens=12).token_ids == base.token_ids
    with pytest.raises(ValidationError):
        AdapterServer(lm, slots=0)


def test_training_can_be_cancelled_and_refuses_bad_input(lm: LocalTransformersLM, engine: LoRAEngine) -> None:
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        engine.train(FACTS, should_cancel=cancel)
    with pytest.raises(ValidationError):
        engine.train([Fact("w", 1, "Word")])  # one word and no questions: nothing to train
    with pytest.raises(ValidationError):
        LoRAEngine(lm, LoRAConfig(max_pair_tokens=8)).train(FACTS)


def test_the_loss_is_the_answers_cross_entropy_and_anchors_pull_towards_the_base(
    lm: LocalTransformersLM, engine: LoRAEngine
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from memcubed.engines.lora.model import twin
    from memcubed.engines.lora.train import Encoded, _batch_loss, _collate

    peft_model = get_peft_model(twin(lm.model), LoraConfig(**FAST.peft_kwargs()))
    pairs = [Encoded(*engine.encode(p, eos=True)) for p in training_pairs(FACTS[0], (0.5,))]
    anchored = [Encoded(p.prompt, p.answer, anchor=True) for p in pairs]
    ids, mask, labels = _collate(pairs, engine._pad)
    with torch.no_grad():
        expected = float(peft_model(input_ids=ids, attention_mask=mask, labels=labels).loss)
        assert float(_batch_loss(peft_model, pairs, engine._pad, 1.0)) == pytest.approx(expected, rel=1e-5)
        # A fresh adapter changes nothing (B = 0): the adapted model is the base, KL is zero.
        assert float(_batch_loss(peft_model, anchored, engine._pad, 1.0)) == pytest.approx(0.0, abs=1e-6)
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.add_(0.01)
        moved = float(_batch_loss(peft_model, anchored, engine._pad, 1.0))
        assert moved > 0 and float(_batch_loss(peft_model, anchored, engine._pad, 2.0)) == pytest.approx(2 * moved)
        mixed = float(_batch_loss(peft_model, [pairs[0], anchored[1]], engine._pad, 1.0))
        assert mixed > moved  # cross-entropy on the learnt pair plus KL on the anchored one
