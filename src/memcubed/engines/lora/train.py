"""Training a LoRA adapter on encoded (prompt → answer) pairs, with progress and cancellation between steps."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from memcubed.engines.lora.config import LoRAConfig
from memcubed.engines.lora.model import quiet_peft
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
    """

    state: dict[str, Any]
    loss_curve: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0

    @property
    def seconds_per_epoch(self) -> float:
        """Mean wall time of one epoch."""
        return self.seconds / max(1, len(self.loss_curve))


def steps_for(n_pairs: int, config: LoRAConfig) -> int:
    """Return how many optimiser steps training ``n_pairs`` pairs takes."""
    return math.ceil(n_pairs / config.batch_size) * config.epochs


def train(model: Any, pairs: Sequence[Encoded], config: LoRAConfig, *, pad_id: int,
          progress: Callable[[int, int], None] | None = None,
          should_cancel: Callable[[], bool] | None = None) -> TrainResult:
    """Train a fresh LoRA adapter on ``model`` (a twin: adapters are injected into it) and return its tensors.

    The adapter's initial weights and the batch order come from ``config.seed``; with dropout 0 the
    same pairs give the same adapter. ``progress`` gets (steps done, steps in all) after each step;
    ``should_cancel`` is asked before each step.

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
    for _ in range(config.epochs):
        batch_order = list(range(len(pairs)))
        order.shuffle(batch_order)
        losses: list[float] = []
        for start in range(0, len(batch_order), config.batch_size):
            if should_cancel is not None and should_cancel():
                raise Cancelled("consolidation cancelled during training", step=result.steps, steps=total)
            batch = [pairs[i] for i in batch_order[start : start + config.batch_size]]
            loss = _batch_loss(peft_model, batch, pad_id, config.anchor_weight)
            loss.backward()
            optimiser.step()
            scheduler.step()
            optimiser.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            result.steps += 1
            if progress is not None:
                progress(result.steps, total)
        result.loss_curve.append(round(sum(losses) / len(losses), 5))
    result.seconds = time.perf_counter() - started
    peft_model.eval()
    state = get_peft_model_state_dict(peft_model)
    result.state = {name: tensor.detach().to("cpu").clone().contiguous() for name, tensor in state.items()}
    return result


def _batch_loss(peft_model: Any, batch: Sequence[Encoded], pad_id: int, anchor_weight: float) -> Any:
    """Per answer token: cross-entropy on learnt pairs, ``anchor_weight`` × KL(base ‖ adapted) on anchors."""
    import torch
    import torch.nn.functional as F

    ids, mask, labels = _collate(batch, pad_id)
    logits = peft_model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    targets = labels[:, 1:]
    supervised = targets != -100
    anchored = torch.tensor([pair.anchor for pair in batch]).unsqueeze(1) & supervised
    learnt = supervised & ~anchored
    total = F.cross_entropy(logits[learnt], targets[learnt], reduction="sum") if learnt.any() else logits.sum() * 0
    if anchored.any():
        rows = [i for i, pair in enumerate(batch) if pair.anchor]
        with torch.no_grad(), peft_model.disable_adapter():
            base = peft_model(input_ids=ids[rows], attention_mask=mask[rows]).logits[:, :-1].float()
        base_logp = F.log_softmax(base[anchored[rows]], dim=-1)
        logp = F.log_softmax(logits[anchored], dim=-1)
        total = total + anchor_weight * F.kl_div(logp, base_logp, log_target=True, reduction="sum")
    return total / supervised.sum()


def _collate(batch: Sequence[Encoded], pad_id: int) -> tuple[Any, Any, Any]:
    """Right-pad a batch; labels are -100 everywhere but on answer tokens."""
    import torch

    width = max(len(p.prompt) + len(p.answer) for p in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    for row, pair in enumerate(batch):
        seq = [*pair.prompt, *pair.answer]
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
        labels[row, len(pair.prompt) : len(seq)] = torch.tensor(pair.answer)
    return ids, mask, labels
