"""Settings of parameter memory: the LoRA shape, the training schedule, and how recall is evaluated."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from memcubed.engines.lora.control import CONTROL, REHEARSAL

__all__ = ["ALL_LINEAR", "LoRAConfig"]

ALL_LINEAR = ("down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj")
"""The seven linear layer types of a Llama-style block (measured: 20/20 facts recalled at r=16)."""


class LoRAConfig(BaseModel):
    """How plaintext facts become a LoRA adapter.

    Defaults: the recipe measured by ``bench/lora.py`` on 50 LoCoMo facts (NOTES.md): rank 4 on all seven
    linear types with KL-anchored rehearsal recalls as much as rank 16 (96% cloze, 92% questions) and
    leaves the 40-question control set where it was; rank 16 lost 4 of its answers. For small jobs
    (``bench/lora_cost.py``) rehearsal and control are sized to the job, and the learning rate is 3e-3
    with 16-token rehearsal answers: at 1e-3 a one-fact job (24 steps) recalled nothing; at 3e-3 it
    recalled its fact with no control answer lost.

    Attributes:
        rank: LoRA rank ``r``.
        alpha: LoRA ``alpha``; the update is scaled by ``alpha / rank``.
        dropout: LoRA dropout during training (0 keeps training deterministic for a seed).
        target_modules: names of the linear layers that get adapters.
        epochs: passes over the training pairs.
        learning_rate: AdamW peak learning rate, decayed linearly to 0.
        batch_size: pairs per optimiser step.
        seed: seeds the adapter's initial weights and the shuffling, so a retrain is reproducible.
        statement_splits: where each statement is cut into (opening → rest) continuation pairs,
            as fractions of its words; empty trains only the caller's question/answer pairs. An
            early cut matters: a token before the first cut is never trained (cuts 0.3/0.6 left
            answer spans early in LoCoMo statements unlearnt: cloze recall 62%).
        question_target: what a question pair teaches: ``statement`` answers with the whole
            statement when it holds the answer (a natural sentence: it disturbs the model's other
            answers less than a bare span), ``answer`` with the answer span alone.
        rehearsal: the most ``REHEARSAL`` prompts trained with the base model's own answers (kept
            as they are), so the adapter does not teach every question to answer like a fact.
        rehearsal_per_fact, rehearsal_min: a job on ``n`` facts rehearses
            ``min(rehearsal, max(rehearsal_min, rehearsal_per_fact * n))`` prompts (``rehearsal_for``):
            rehearsal is most of the training steps of a small job, so it grows with the job.
        rehearsal_tokens: length of those answers.
        anchor_weight: how rehearsal answers are trained: > 0 pulls the adapted model's whole
            next-token distribution on them towards the base model's (KL divergence, this weight
            per token); 0 trains the base model's greedy tokens as ordinary answers.
        max_pair_tokens: longest prompt + answer a pair may have (longer statements are refused).
        answer_slack_tokens: tokens generated beyond the answer's own length when checking recall.
        eval_batch_size: probes generated and scored together in one padded batch (1: one at a time;
            greedy outputs are the same either way). A decoding step reads every weight whatever the
            rows (measured at 1 thread: ~80 ms for 1 row, ~180 ms for 16), so the default, 64, runs a
            16-fact job's probes and control set in one batch.
        control_min, control_per_fact, control_max: with the default control set, a job on ``n`` facts
            asks ``min(control_max, max(control_min, control_per_fact * n))`` of its questions
            (``control_for``); an explicit control set is asked whole. One question of 20 moves the
            drift by 5 points, so fewer than 20 cannot resolve a 5-point bound.
        recall_min: the gate: the fraction of the facts' probes an adapter must answer after training
            to be served.
        drift_max: the gate: the most control points (percent of the control set) an adapter may lose
            against the base model to be served. A failing adapter is stored inactive, never served.
        early_stop: end training after the first epoch (from ``early_stop_min_epochs`` on) at which every
            probe of every fact is recalled, greedy with no context, by the adapted model, and the control
            set (when the job has one) is within ``drift_max`` (checked after each epoch, batched; control
            only once recall holds). ``epochs`` is then the most epochs: a small job usually needs far
            fewer. Stopping at the first recall alone was measured to lose control answers (a 2-question
            control set lost both after 2 of 5 epochs without rehearsal; the full 5 lost at most one).
        early_stop_min_epochs: epochs always trained before the first check.
        early_stop_patience: training also ends (the control set within bound, as above) once this many
            checks in a row have recalled no more probes than the best check before them and the recall
            passes ``recall_min``: a fact still missed then was, in the 4-fact LoCoMo job, still missed at
            every later check (recall 3/4 from epoch 4 to 8), so the remaining epochs bought nothing. 0: off.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    rank: int = Field(default=4, ge=1, le=256)
    alpha: float = Field(default=8.0, gt=0)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = Field(default=ALL_LINEAR, min_length=1)
    epochs: int = Field(default=8, ge=1, le=200)
    learning_rate: float = Field(default=3e-3, gt=0, le=1.0)
    batch_size: int = Field(default=4, ge=1, le=256)
    seed: int = Field(default=0, ge=0)
    statement_splits: tuple[float, ...] = Field(default=(0.1, 0.5))
    question_target: Literal["statement", "answer"] = "statement"
    rehearsal: int = Field(default=len(REHEARSAL), ge=0, le=len(REHEARSAL))
    rehearsal_tokens: int = Field(default=16, ge=1, le=256)
    anchor_weight: float = Field(default=3.0, ge=0.0, le=100.0)
    max_pair_tokens: int = Field(default=512, ge=8)
    answer_slack_tokens: int = Field(default=16, ge=0, le=256)
    rehearsal_per_fact: int = Field(default=4, ge=0, le=len(REHEARSAL))
    rehearsal_min: int = Field(default=8, ge=0, le=len(REHEARSAL))
    eval_batch_size: int = Field(default=64, ge=1, le=256)
    control_min: int = Field(default=20, ge=0, le=len(CONTROL))
    control_per_fact: int = Field(default=2, ge=0, le=len(CONTROL))
    control_max: int = Field(default=len(CONTROL), ge=0, le=len(CONTROL))
    recall_min: float = Field(default=0.5, ge=0.0, le=1.0)
    drift_max: float = Field(default=10.0, ge=0.0, le=100.0)
    # -- training to the recall criterion (helper `consol`) --
    early_stop: bool = True
    early_stop_min_epochs: int = Field(default=2, ge=1, le=200)
    early_stop_patience: int = Field(default=2, ge=0, le=200)

    @field_validator("target_modules")
    @classmethod
    def _module_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"target_modules: {name!r} is not a module name")
        return tuple(sorted(set(value)))

    @field_validator("statement_splits")
    @classmethod
    def _fractions(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        for fraction in value:
            if not 0.0 < fraction < 1.0:
                raise ValueError(f"statement_splits: {fraction} is not strictly between 0 and 1")
        return tuple(sorted(set(value)))

    def rehearsal_for(self, facts: int) -> int:
        """Return how many rehearsal prompts a job on ``facts`` facts trains (see ``rehearsal_per_fact``)."""
        return min(self.rehearsal, max(self.rehearsal_min, self.rehearsal_per_fact * facts))

    def control_for(self, facts: int) -> int:
        """Return how many default control questions a job on ``facts`` facts asks (see ``control_min``)."""
        return min(self.control_max, max(self.control_min, self.control_per_fact * facts))

    def peft_kwargs(self) -> dict[str, Any]:
        """Return the arguments of ``peft.LoraConfig`` this configuration stands for."""
        return {"r": self.rank, "lora_alpha": self.alpha, "lora_dropout": self.dropout,
                "target_modules": list(self.target_modules), "bias": "none", "task_type": "CAUSAL_LM"}

    def canonical(self) -> str:
        """Return the configuration as sorted, compact JSON (stored with adapters)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
