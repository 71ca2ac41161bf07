"""Training a LoRA adapter on encoded (prompt → answer) pairs, with progress and cancellation between steps."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from memcubed.engines.lora.config import LoRAConfig
from memcubed.engines.lora.model import MIN_SHARED_PREFIX, answer_logits, common_prefix, prefix_cache, quiet_peft
from memcubed.errors import Cancelled, DependencyMissing, ValidationError

__all__ = ["Encoded", "TrainResult", "train"]


@dataclass(frozen=True)
class Encoded:
    """A pair as token ids: the loss is taken on ``answer`` only.

    An ``anchor`` pair is not learnt from its tokens: on its answer positions the adapted model is
    pulled towards the base model's whole next-token distribution (KL divergence), which keeps
    what the base model does there far more firmly than training its greedy tokens.
    """

    prompt: list[int]
    answer: list[int]
    anchor: bool = False


@dataclass
class TrainResult:
    """A trained adapter and how the training went.

    Attributes:
        state: the adapter's tensors (peft state-dict names → CPU tensors).
        loss_curve: mean training loss of each epoch.
        seconds: wall time of the training loop.
        steps: optimiser steps taken.
        stopped_early: training ended before ``config.epochs`` because the stopping criterion held.
        recall_checks: the in-loop recall checks' results (fraction of fact probes recalled), one per epoch checked.
    """

    state: dict[str, Any]
    loss_curve: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0
    stopped_early: bool = False
    recall_checks: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        """Epochs trained."""
        return len(self.loss_curve)

    @property
    def seconds_per_epoch(self) -> float:
        """Mean wall time of one epoch."""
        return self.seconds / max(1, len(self.loss_curve))


def steps_for(n_pairs: int, config: LoRAConfig) -> int:
    """Return how many optimiser steps training ``n_pairs`` pairs takes."""
    return math.ceil(n_pairs / config.batch_size) * config.epochs


Criterion = Callable[[Any], tuple[float, bool]]
"""The adapted model (LoRA layers active, eval mode) → (fraction of the facts' probes it recalls, whether
training may stop now)."""


def train(model: Any, pairs: Sequence[Encoded], config: LoRAConfig, *, pad_id: int,
          progress: Callable[[int, int], None] | None = None,
          should_cancel: Callable[[], bool] | None = None, criterion: Criterion | None = None) -> TrainResult:
    """Train a fresh LoRA adapter on ``model`` (a twin: adapters are injected into it) and return its tensors.

    The adapter's initial weights and the batch order come from ``config.seed``; with dropout 0 the
    same pairs give the same adapter. ``progress`` gets (steps done, steps in all) after each step
    (and (all, all) when training stops early); ``should_cancel`` is asked before each step.

    Early stopping (``config.early_stop``): after each epoch from ``config.early_stop_min_epochs`` on
    (the last excepted), ``criterion`` is asked with the adapted model; training ends as soon as it says
    so (see ``LoRAEngine.train``: every fact probe recalled and the control set within its bound). The
    recall of each check is kept in ``recall_checks``. The base model's distributions on anchored answers
    are computed once, before training (they do not change), not at every step.

    Raises:
        ValidationError: no pairs.
        Cancelled: ``should_cancel`` returned True (nothing is returned; the twin is discarded).
        DependencyMissing: peft is not installed.
    """
    try:
        import torch
        from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    except ImportError as exc:
        raise DependencyMissing("parameter memory needs `pip install memcubed[local]` (peft)", package="peft") from exc
    if not pairs:
        raise ValidationError("nothing to train: no training pairs", field="cube_ids")
    base_logp = _anchor_targets(model, pairs, pad_id)  # before adapters exist: the base model's own outputs
    torch.manual_seed(config.seed)
    with quiet_peft():
        peft_model = get_peft_model(model, LoraConfig(**config.peft_kwargs()))
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=config.learning_rate)
    total = steps_for(len(pairs), config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: max(0.0, 1.0 - step / total))
    order = random.Random(config.seed)
    result = TrainResult(state={})
    started = time.perf_counter()
    peft_model.train()
    for epoch in range(1, config.epochs + 1):
        batch_order = list(range(len(pairs)))
        order.shuffle(batch_order)
        losses: list[float] = []
        for start in range(0, len(batch_order), config.batch_size):
            if should_cancel is not None and should_cancel():
                raise Cancelled("consolidation cancelled during training", step=result.steps, steps=total)
            rows = batch_order[start : start + config.batch_size]
            batch = [pairs[i] for i in rows]
            loss = _batch_loss(peft_model, batch, pad_id, config.anchor_weight,
                               base_logp=[base_logp.get(i) for i in rows], share_prefix=config.dropout == 0)
            loss.backward()
            optimiser.step()
            scheduler.step()
            optimiser.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            result.steps += 1
            if progress is not None:
                progress(result.steps, total)
        result.loss_curve.append(round(sum(losses) / len(losses), 5))
        if criterion is not None and config.early_stop and epoch >= config.early_stop_min_epochs \
                and epoch < config.epochs:
            peft_model.eval()
            recalled, met = criterion(peft_model.get_base_model())
            peft_model.train()
            result.recall_checks.append(round(float(recalled), 4))
            if met:
                result.stopped_early = True
                if progress is not None:
                    progress(total, total)
                break
    result.seconds = time.perf_counter() - started
    peft_model.eval()
    state = get_peft_model_state_dict(peft_model)
    result.state = {name: tensor.detach().to("cpu").clone().contiguous() for name, tensor in state.items()}
    return result


def _batch_loss(peft_model: Any, batch: Sequence[Encoded], pad_id: int, anchor_weight: float,
                base_logp: Sequence[Any | None] | None = None, *, share_prefix: bool = True) -> Any:
    """Per answer token: cross-entropy on learnt pairs, ``anchor_weight`` × KL(base ‖ adapted) on anchors.

    Only answer positions go through the output layer (the prompt's logits are never used). ``base_logp``
    holds, per pair, the base model's log-probabilities on its answer positions (``_anchor_targets``);
    an anchor without them has them computed here, with the adapter disabled. ``share_prefix``: the rows
    that begin with the same tokens (the chat template's system prompt) compute them once (``_groups``;
    the same loss and gradients, to float rounding).
    """
    import torch
    import torch.nn.functional as F

    known: list[Any] = list(base_logp) if base_logp is not None else [None] * len(batch)
    model = peft_model.get_base_model()
    total: Any = 0
    count = 0
    for rows, shared in _groups(batch, share_prefix):
        pairs = [batch[i] for i in rows]
        logits, flat, supervised = _answer_logits(model, pairs, pad_id, shared)
        anchored = (torch.tensor([pair.anchor for pair in pairs]).unsqueeze(1) & supervised)[supervised]
        learnt = ~anchored
        part = F.cross_entropy(logits[learnt], flat[learnt], reduction="sum") if learnt.any() else logits.sum() * 0
        if anchored.any():
            missing = [j for j, pair in enumerate(pairs) if pair.anchor and known[rows[j]] is None]
            if missing:
                with torch.no_grad(), peft_model.disable_adapter():
                    computed, _, _ = _answer_logits(model, [pairs[j] for j in missing], pad_id, shared)
                sizes = [len(pairs[j].answer) for j in missing]
                for j, logp in zip(missing, torch.split(F.log_softmax(computed, dim=-1), sizes), strict=True):
                    known[rows[j]] = logp
            target = torch.cat([known[rows[j]] for j, pair in enumerate(pairs) if pair.anchor])
            logp = F.log_softmax(logits[anchored], dim=-1)
            part = part + anchor_weight * F.kl_div(logp, target, log_target=True, reduction="sum")
        total = total + part
        count += int(supervised.sum())
    return total / count


def _groups(batch: Sequence[Encoded], share: bool) -> list[tuple[list[int], int]]:
    """The batch's rows as (rows, leading tokens they share): rows that begin with the same ``MIN_SHARED_PREFIX``
    tokens share their common prefix; every other row goes in one group that shares nothing."""
    if not share:
        return [(list(range(len(batch))), 0)]
    by_start: dict[tuple[int, ...], list[int]] = {}
    for i, pair in enumerate(batch):
        by_start.setdefault(tuple(pair.prompt[:MIN_SHARED_PREFIX]), []).append(i)
    groups: list[tuple[list[int], int]] = []
    alone: list[int] = []
    for rows in by_start.values():
        shared = common_prefix([batch[i].prompt for i in rows]) if len(rows) > 1 else 0
        if shared >= MIN_SHARED_PREFIX:
            groups.append((rows, shared))
        else:
            alone.extend(rows)
    return [*groups, (sorted(alone), 0)] if alone else groups


def _answer_logits(model: Any, pairs: Sequence[Encoded], pad_id: int, shared: int) -> tuple[Any, Any, Any]:
    """(logits on the answer positions, their target tokens, the supervised mask) of ``pairs``, whose first
    ``shared`` prompt tokens (the same in every pair) are computed once."""
    ids, mask, labels = _collate(pairs, pad_id, skip=shared)
    targets = labels[:, 1:]
    supervised = targets != -100
    prefix = prefix_cache(model, pairs[0].prompt[:shared], len(pairs)) if shared else None
    return answer_logits(model, ids, mask, supervised, prefix=prefix), targets[supervised], supervised


def _anchor_targets(model: Any, pairs: Sequence[Encoded], pad_id: int, batch_size: int = 8) -> dict[int, Any]:
    """The base model's log-probabilities on the answer positions of every anchored pair, by pair index."""
    import torch
    import torch.nn.functional as F

    rows = [i for i, pair in enumerate(pairs) if pair.anchor]
    found: dict[int, Any] = {}
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            chunk = [pairs[i] for i in rows[start : start + batch_size]]
            for group, shared in _groups(chunk, True):
                logits, _, _ = _answer_logits(model, [chunk[j] for j in group], pad_id, shared)
                sizes = [len(chunk[j].answer) for j in group]
                for j, part in zip(group, torch.split(F.log_softmax(logits, dim=-1), sizes), strict=True):
                    found[rows[start + j]] = part
    return found


def _collate(batch: Sequence[Encoded], pad_id: int, *, skip: int = 0) -> tuple[Any, Any, Any]:
    """Right-pad a batch, leaving out each prompt's first ``skip`` tokens; labels are -100 everywhere but on
    answer tokens."""
    import torch

    width = max(len(p.prompt) + len(p.answer) for p in batch) - skip
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    for row, pair in enumerate(batch):
        seq = [*pair.prompt[skip:], *pair.answer]
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
        labels[row, len(pair.prompt) - skip : len(seq)] = torch.tensor(pair.answer)
    return ids, mask, labels
