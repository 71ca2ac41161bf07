"""Parameter memory for one open model: train adapters on facts, evaluate recall, serialise, serve.

``LoRAEngine`` ties the pieces together for a ``LocalTransformersLM``: facts become pairs
(``pairs``), pairs train an adapter on a weight-sharing twin of the model (``train``), probes
measure recall before and after (``evaluate``), adapters become safetensors bytes (``serialize``),
and an ``AdapterServer`` generates with several of them loaded (``serve``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memcubed.backends.models.base import KVLanguageModel, LanguageModel
from memcubed.backends.models.local import LocalTransformersLM
from memcubed.engines.lora.basecache import BaseAnswers
from memcubed.engines.lora.config import LoRAConfig
from memcubed.engines.lora.control import REHEARSAL
from memcubed.engines.lora.evaluate import Evaluation, ProbeResult, evaluate, score
from memcubed.engines.lora.model import Until, answer_loss, answer_losses, greedy, greedy_batch, twin
from memcubed.engines.lora.pairs import Example, Fact, training_pairs
from memcubed.engines.lora.pairs import probes as fact_probes
from memcubed.engines.lora.serialize import Adapter, dump_adapter, load_adapter
from memcubed.engines.lora.serve import attach
from memcubed.engines.lora.train import Encoded, TrainResult, steps_for, train
from memcubed.errors import Cancelled, ConfigurationError, ValidationError

__all__ = ["LoRAEngine", "Trained", "open_model"]

Progress = Callable[[int, int], None]
ShouldCancel = Callable[[], bool]


def open_model(lm: LanguageModel | KVLanguageModel) -> LocalTransformersLM:
    """Return ``lm`` when adapters can be trained and served on it (a local transformers model).

    Raises:
        ConfigurationError: the model's weights are not reachable (an HTTP API model).
    """
    if not isinstance(lm, LocalTransformersLM):
        raise ConfigurationError("parameter memory needs an open local model (local or local:<model>)",
                                 field="lm", model=getattr(lm, "name", type(lm).__name__))
    return lm


@dataclass
class Trained:
    """A freshly trained adapter and its training record.

    Attributes:
        after: when training ended on an early-stop check, that check's evaluation of the facts' probes
            then the control probes (in the order ``train`` was given them) on the final weights, losses
            included: what evaluating the stored adapter on them again gives, so it need not be run twice.
    """

    adapter: Adapter
    result: TrainResult
    pairs: int
    after: Evaluation | None = None


class LoRAEngine:
    """Trains, evaluates and serialises LoRA adapters for one local model.

    Args:
        lm: the base model (a ``LocalTransformersLM``).
        config: adapter shape, schedule and evaluation settings.
        cache_dir: where the base model's answers to the default control and rehearsal sets are kept
            between processes (``basecache``; default ``<memcubed cache>/lora``).

    Raises:
        ConfigurationError: ``lm`` is not an open local model.
    """

    def __init__(self, lm: LanguageModel | KVLanguageModel, config: LoRAConfig | None = None, *,
                 cache_dir: Path | None = None) -> None:
        self.lm = open_model(lm)
        self.config = config or LoRAConfig()
        self.fingerprint = self.lm.fingerprint  # computed before any twin or adapter exists
        eos = self.lm.tokenizer.eos_token_id
        self._eos: int = int(eos if eos is not None else min(self.lm.eos_token_ids))
        pad = self.lm.tokenizer.pad_token_id
        self._pad: int = int(pad if pad is not None else self._eos)
        self.base = BaseAnswers.of(self.lm, cache_dir, eos=[self._eos])

    # -- pairs ------------------------------------------------------------
    def encode(self, example: Example, *, eos: bool = False) -> tuple[list[int], list[int]]:
        """Return (prompt ids, answer ids) of an example; ``eos`` appends the end token to the answer.

        A chat example's prompt is a user turn in the chat template; a raw one is the text itself,
        and its answer is tokenised with a leading space, as it continues the prompt.
        """
        if example.chat:
            prompt = self.lm.chat_ids([{"role": "user", "content": example.prompt}])
            answer = self.lm.encode(example.answer)
        else:
            prompt = self.lm.encode(example.prompt)
            answer = self.lm.encode(" " + example.answer)
        return prompt, [*answer, self._eos] if eos else answer

    def pairs(self, facts: Sequence[Fact]) -> list[Example]:
        """Return the training pairs of ``facts`` (see ``pairs`` for how a fact becomes pairs), rehearsal excluded."""
        return [pair for fact in facts
                for pair in training_pairs(fact, self.config.statement_splits,
                                           question_target=self.config.question_target)]

    def steps(self, facts: Sequence[Fact]) -> int:
        """Return the most optimiser steps training ``facts`` takes (rehearsal included; an early stop takes fewer)."""
        return steps_for(len(self.pairs(facts)) + self.config.rehearsal_for(len(facts)), self.config)

    def rehearsal(self, count: int | None = None) -> list[Example]:
        """Return ``count`` rehearsal pairs (default ``config.rehearsal``): ``REHEARSAL`` prompts with the base
        model's own greedy answers, generated in batches.

        Training them with the facts keeps the adapter from rewriting the model's general behaviour
        (without them, every question drifted towards a fact-style one-word answer: 0/6 control).
        """
        prompts = REHEARSAL[: self.config.rehearsal if count is None else min(count, self.config.rehearsal)]
        tokens, size = self.config.rehearsal_tokens, self.config.eval_batch_size
        answers = {p: self.base.rehearsal(p, tokens) for p in prompts}
        todo = [p for p, answer in answers.items() if answer is None]
        with self.lm._lock:
            for start in range(0, len(todo), size):
                chunk = todo[start : start + size]
                ids = [self.lm.chat_ids([{"role": "user", "content": prompt}]) for prompt in chunk]
                outputs = self._generate(self.lm.model, ids, [tokens] * len(ids), size, None)
                answers.update((prompt, self.lm.decode(out)) for prompt, out in zip(chunk, outputs, strict=True))
        if todo:
            self.base.keep_rehearsal({p: str(answers[p]) for p in todo}, tokens)
        return [Example("", "rehearsal", p, str(answers[p]), chat=True) for p in prompts]

    def _generate(self, model: Any, prompts: list[list[int]], limits: list[int], batch_size: int,
                  until: Until | None) -> list[list[int]]:
        """Greedy continuations, one prompt at a time (``batch_size`` 1: the reference path) or batched."""
        eos = self.lm.eos_token_ids
        if batch_size == 1:
            return [greedy(model, p, eos=eos, max_new_tokens=n, until=_as_row(until, row)).token_ids
                    for row, (p, n) in enumerate(zip(prompts, limits, strict=True))]
        return greedy_batch(model, prompts, eos=eos, limits=limits, pad_id=self._pad, until=until)

    def _losses(self, model: Any, pairs: list[tuple[list[int], list[int]]], batch_size: int) -> list[float]:
        if batch_size == 1:
            return [answer_loss(model, prompt, answer) for prompt, answer in pairs]
        return answer_losses(model, pairs, pad_id=self._pad)

    # -- train ------------------------------------------------------------
    def train(self, facts: Sequence[Fact], *, progress: Progress | None = None,
              should_cancel: ShouldCancel | None = None, control: Sequence[Example] = ()) -> Trained:
        """Train one adapter on ``facts`` (on a twin: the base model is not changed).

        With ``config.early_stop``, training ends after the first epoch (from ``early_stop_min_epochs``
        on) at which every probe of every fact is recalled, or recall has not risen for
        ``early_stop_patience`` checks (and passes ``recall_min``), and, when ``control`` probes are given,
        the control questions the base model answers lose at most ``config.drift_max`` points of
        ``control`` (a bound on the gate's net drift, so a stop is never where the gate would refuse for drift).

        Raises:
            ValidationError: the facts give no training pairs, or a pair exceeds ``max_pair_tokens``.
            Cancelled: ``should_cancel`` returned True.
        """
        examples = self.pairs(facts)
        if not examples:
            raise ValidationError("the facts give no training pairs (too short, and no questions)", field="cube_ids")
        encoded: list[Encoded] = []
        for example in examples:
            prompt, answer = self.encode(example, eos=True)
            if len(prompt) + len(answer) > self.config.max_pair_tokens:
                raise ValidationError(f"a training pair of fact {example.fact_id or '?'} has "
                                      f"{len(prompt) + len(answer)} tokens; max_pair_tokens is "
                                      f"{self.config.max_pair_tokens}", field="max_pair_tokens", id=example.fact_id)
            encoded.append(Encoded(prompt=prompt, answer=answer))
        if should_cancel is not None and should_cancel():
            raise Cancelled("training cancelled before it started")
        for example in self.rehearsal(self.config.rehearsal_for(len(facts))):
            # A rehearsal answer cut at rehearsal_tokens gets no end token: the model keeps its own length.
            prompt, answer = self.encode(example)
            encoded.append(Encoded(prompt=prompt, answer=answer, anchor=self.config.anchor_weight > 0))
        checks = [p for fact in facts for p in fact_probes(fact)]
        after: list[Evaluation] = []
        history: list[float] = []

        def criterion(model: Any) -> tuple[float, bool]:
            found = self._run_probes(model, checks, None, None, None, losses=False)
            history.append(found.recall)
            if not checks or (found.recall < 1.0 and not self._plateau(history)):
                return found.recall, False
            base = self.evaluate(control).results  # the base model's, remembered
            # The whole control set in one batch (hits only): the questions the base model missed are needed
            # only when this check stops training, but asked beside the others they cost little more.
            now = self._run_probes(model, control, None, None, None, losses=False).results
            if 100 * sum(b.hit and not r.hit for b, r in zip(base, now, strict=True)) / max(1, len(control)) \
                    > self.config.drift_max:
                return found.recall, False
            # Stopping here: these results and every loss, on these same weights, make the evaluation after
            # training (hits only so far, so a check that does not stop costs no losses).
            after.append(self._score(model, [*found.results, *now]))
            return found.recall, True

        with self.lm._lock:
            result = train(twin(self.lm.model), encoded, self.config, pad_id=self._pad, progress=progress,
                           should_cancel=should_cancel, criterion=criterion)
        adapter = Adapter(fingerprint=self.fingerprint, config=self.config, state=result.state)
        return Trained(adapter=adapter, result=result, pairs=len(examples),
                       after=after[-1] if result.stopped_early and after else None)

    def _plateau(self, history: Sequence[float]) -> bool:
        """Whether recall has stopped rising: the last ``early_stop_patience`` checks found no more than the best
        before them, and what they found already passes the gate's ``recall_min``."""
        patience = self.config.early_stop_patience
        if not patience or len(history) <= patience:
            return False
        return max(history[-patience:]) <= max(history[:-patience]) and history[-1] >= self.config.recall_min

    # -- evaluate -----------------------------------------------------------
    def evaluate(self, probes: Sequence[Example], adapters: Sequence[Adapter] = (), *,
                 progress: Progress | None = None, should_cancel: ShouldCancel | None = None,
                 batch_size: int | None = None) -> Evaluation:
        """Measure recall of ``probes`` with no context, by the base model or with ``adapters`` active.

        Probes run ``batch_size`` at a time (default ``config.eval_batch_size``; 1 runs them one by one).
        The base model's results on control probes are remembered per model fingerprint (they hold
        no fact text), so every consolidation after the first asks the control set only once; the default
        set's are kept on disk too (``basecache``), so a new process does not ask them again.

        Raises:
            ConfigurationError: an adapter belongs to another base model.
            Cancelled: ``should_cancel`` returned True.
        """
        slack = self.config.answer_slack_tokens
        remembered = [self.base.result(p, slack) if not adapters and p.kind == "control" else None for p in probes]
        known = {i: r for i, r in enumerate(remembered) if r is not None}
        todo = [p for i, p in enumerate(probes) if i not in known]

        def advance(done: int, _: int) -> None:
            if progress is not None:
                progress(len(known) + done, len(probes))

        fresh = iter(self._evaluate(todo, adapters, progress=advance, should_cancel=should_cancel,
                                    batch_size=batch_size).results)
        results = [known[i] if i in known else next(fresh) for i in range(len(probes))]
        if not adapters:
            self.base.keep_results([r for i, r in enumerate(results) if i not in known], slack)
        if progress is not None and known:
            progress(len(probes), len(probes))
        return Evaluation(results)

    def _evaluate(self, probes: Sequence[Example], adapters: Sequence[Adapter], *, progress: Progress | None,
                  should_cancel: ShouldCancel | None, batch_size: int | None) -> Evaluation:
        with self.lm._lock:
            model = self.lm.model
            if adapters:
                peft_model = None
                names = []
                for i, adapter in enumerate(adapters):
                    if adapter.fingerprint != self.fingerprint:
                        raise ConfigurationError("the adapter was trained on another base model", field="model",
                                                 expected=self.fingerprint, actual=adapter.fingerprint)
                    names.append(f"eval_{i}")
                    peft_model = attach(peft_model, twin(self.lm.model) if peft_model is None else None,
                                        names[-1], adapter)
                assert peft_model is not None
                peft_model.base_model.set_adapter(names, inference_mode=True)
                model = peft_model.base_model.model  # the twin, its LoRA layers running the active adapters
            return self._run_probes(model, probes, progress, should_cancel, batch_size)

    def _run_probes(self, model: Any, probes: Sequence[Example], progress: Progress | None,
                    should_cancel: ShouldCancel | None, batch_size: int | None, *, losses: bool = True) -> Evaluation:
        """``evaluate`` the probes on ``model`` as it is (the base model, or a twin with adapters active);
        ``losses=False``: hits and outputs only."""
        size = self.config.eval_batch_size if batch_size is None else batch_size
        return evaluate(
            probes, encode=self.encode,
            generate=lambda ids, limits, until: self._generate(model, ids, limits, size, until),
            loss=(lambda pairs: self._losses(model, pairs, size)) if losses else None, decode=self.lm.decode,
            slack_tokens=self.config.answer_slack_tokens, batch_size=size, progress=progress,
            should_cancel=should_cancel)

    def _score(self, model: Any, results: Sequence[ProbeResult]) -> Evaluation:
        """``results`` (hits only) with their losses on ``model``."""
        size = self.config.eval_batch_size
        return score(results, encode=self.encode, loss=lambda pairs: self._losses(model, pairs, size), batch_size=size)

    # -- bytes --------------------------------------------------------------
    def dumps(self, adapter: Adapter) -> bytes:
        """Return an adapter's safetensors bytes (store them with ``BlobStore.put``)."""
        return dump_adapter(adapter)

    def loads(self, data: bytes) -> Adapter:
        """Parse adapter bytes made for this engine's base model.

        Raises:
            ConfigurationError: the adapter belongs to another base model.
            IntegrityError: the bytes are malformed.
        """
        return load_adapter(data, fingerprint=self.fingerprint)


def _as_row(until: Until | None, row: int) -> Until | None:
    """``until`` of a batch, asked for one of its rows generated alone (as row 0)."""
    if until is None:
        return None
    return lambda _, tokens: until(row, tokens)
