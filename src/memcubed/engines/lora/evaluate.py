"""Recall with no context: greedy exact match of each probe's answer span, and the answer's loss.

A probe's greedy output stops early once its hit is settled (``pairs.settled``: the answer is followed by
a whitespace, so no continuation can undo the match); a miss runs to its token limit. Hits are what the
full-length outputs give; the outputs of hits are prefixes of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from memcubed.engines.lora.pairs import Example, recalled, settled
from memcubed.errors import Cancelled

__all__ = ["Evaluation", "ProbeResult", "evaluate", "score"]


@dataclass(frozen=True)
class ProbeResult:
    """How one probe went.

    Attributes:
        probe: the probe.
        hit: the answer span appeared in the greedy output.
        loss: mean NLL of the answer tokens (or of the probe's ``reference``) after the prompt (nats per token);
            NaN when the evaluation was asked for hits only (``evaluate(..., losses=False)``).
        output: the greedy output.
    """

    probe: Example
    hit: bool
    loss: float
    output: str


@dataclass
class Evaluation:
    """Probe results with their aggregates."""

    results: list[ProbeResult] = field(default_factory=list)

    @property
    def hits(self) -> int:
        """Probes answered."""
        return sum(r.hit for r in self.results)

    @property
    def recall(self) -> float:
        """Fraction of probes answered (0 for no probes)."""
        return self.hits / len(self.results) if self.results else 0.0

    @property
    def mean_loss(self) -> float:
        """Mean answer loss over probes (0 for no probes)."""
        return sum(r.loss for r in self.results) / len(self.results) if self.results else 0.0

    def summary(self) -> dict[str, Any]:
        """Counts and means only (no text: stored on cubes, it must not outlive a forgotten source)."""
        return {"probes": len(self.results), "hits": self.hits, "recall": round(self.recall, 4),
                "mean_loss": round(self.mean_loss, 4)}

    def by_fact(self) -> dict[str, dict[str, Any]]:
        """Per fact id: probes, hits and mean answer loss."""
        grouped: dict[str, list[ProbeResult]] = {}
        for result in self.results:
            grouped.setdefault(result.probe.fact_id, []).append(result)
        return {fact: {"probes": len(rs), "hits": sum(r.hit for r in rs),
                       "mean_loss": round(sum(r.loss for r in rs) / len(rs), 4)} for fact, rs in grouped.items()}


Encode = Callable[[Example], tuple[list[int], list[int]]]
Until = Callable[[int, list[int]], bool]
GenerateBatch = Callable[[list[list[int]], list[int], Until], list[list[int]]]
"""(prompts, token limits, until) → each prompt's greedy continuation; ``until(row, tokens)`` may end a row early."""
LossBatch = Callable[[list[tuple[list[int], list[int]]]], list[float]]
"""(prompt, answer) pairs → each answer's mean teacher-forced loss."""


def evaluate(probes: Sequence[Example], *, encode: Encode, generate: GenerateBatch, loss: LossBatch | None,
             decode: Callable[[list[int]], str], slack_tokens: int, batch_size: int = 1,
             progress: Callable[[int, int], None] | None = None,
             should_cancel: Callable[[], bool] | None = None) -> Evaluation:
    """Run every probe: greedy output of up to (answer length + ``slack_tokens``) tokens, and the teacher-forced loss.

    Probes run ``batch_size`` at a time, grouped by prompt length (less padding); the results come
    back in the probes' order. ``progress`` gets (probes done, probes) after each batch. ``loss`` None
    asks for hits only (losses NaN; ``score`` adds them later).

    Raises:
        Cancelled: ``should_cancel`` returned True before a batch.
    """
    encoded = [encode(probe) for probe in probes]
    order = sorted(range(len(probes)), key=lambda i: (len(encoded[i][0]), i))
    results: dict[int, ProbeResult] = {}
    step = max(1, batch_size)
    for start in range(0, len(order), step):
        if should_cancel is not None and should_cancel():
            raise Cancelled("evaluation cancelled", probe=start, probes=len(probes))
        rows = order[start : start + step]

        def until(row: int, tokens: list[int], rows: list[int] = rows) -> bool:
            return settled(probes[rows[row]].answer, decode(tokens))

        outputs = generate([encoded[i][0] for i in rows], [len(encoded[i][1]) + slack_tokens for i in rows], until)
        for i, ids in zip(rows, outputs, strict=True):
            text = decode(ids)
            results[i] = ProbeResult(probe=probes[i], hit=recalled(probes[i].answer, text), loss=math.nan, output=text)
        if loss is not None:
            scored = score([results[i] for i in rows], encode=encode, loss=loss, batch_size=step)
            results.update(zip(rows, scored.results, strict=True))
        if progress is not None:
            progress(len(results), len(probes))
    return Evaluation([results[i] for i in range(len(probes))])


def score(results: Sequence[ProbeResult], *, encode: Encode, loss: LossBatch, batch_size: int) -> Evaluation:
    """``results`` with each probe's teacher-forced loss (of its answer, or of its ``reference``), ``batch_size``
    pairs per pass."""
    pairs = []
    for result in results:
        prompt, answer = encode(result.probe)
        pairs.append((prompt, encode(replace(result.probe, answer=result.probe.reference))[1]
                      if result.probe.reference else answer))
    values: list[float] = []
    for start in range(0, len(pairs), max(1, batch_size)):
        values.extend(loss(pairs[start : start + max(1, batch_size)]))
    return Evaluation([replace(r, loss=v) for r, v in zip(results, values, strict=True)])
