"""Recall with no context: greedy exact match of each probe's answer span, and the answer's loss."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from memcubed.engines.lora.pairs import Example, recalled
from memcubed.errors import Cancelled

__all__ = ["Evaluation", "ProbeResult", "evaluate"]


@dataclass(frozen=True)
class ProbeResult:
    """How one probe went.

    Attributes:
        probe: the probe.
        hit: the answer span appeared in the greedy output.
        loss: mean NLL of the answer tokens (or of the probe's ``reference``) after the prompt (nats per token).
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
GenerateBatch = Callable[[list[list[int]], list[int]], list[list[int]]]
"""(prompts, token limits) → each prompt's greedy continuation."""
LossBatch = Callable[[list[tuple[list[int], list[int]]]], list[float]]
"""(prompt, answer) pairs → each answer's mean teacher-forced loss."""


def evaluate(probes: Sequence[Example], *, encode: Encode, generate: GenerateBatch, loss: LossBatch,
             decode: Callable[[list[int]], str], slack_tokens: int, batch_size: int = 1,
             progress: Callable[[int, int], None] | None = None,
             should_cancel: Callable[[], bool] | None = None) -> Evaluation:
    """Run every probe: greedy output of (answer length + ``slack_tokens``) tokens, and the teacher-forced loss.

    Probes run ``batch_size`` at a time, grouped by prompt length (less padding); the results come
    back in the probes' order. ``progress`` gets (probes done, probes) after each batch.

    Raises:
        Cancelled: ``should_cancel`` returned True before a batch.
    """
    encoded = [encode(probe) for probe in probes]
    scored = [encode(replace(p, answer=p.reference))[1] if p.reference else answer
              for p, (_, answer) in zip(probes, encoded, strict=True)]
    order = sorted(range(len(probes)), key=lambda i: (len(encoded[i][0]), i))
    results: dict[int, ProbeResult] = {}
    for start in range(0, len(order), max(1, batch_size)):
        if should_cancel is not None and should_cancel():
            raise Cancelled("evaluation cancelled", probe=start, probes=len(probes))
        rows = order[start : start + max(1, batch_size)]
        outputs = generate([encoded[i][0] for i in rows], [len(encoded[i][1]) + slack_tokens for i in rows])
        losses = loss([(encoded[i][0], scored[i]) for i in rows])
        for i, ids, value in zip(rows, outputs, losses, strict=True):
            text = decode(ids)
            results[i] = ProbeResult(probe=probes[i], hit=recalled(probes[i].answer, text), loss=value, output=text)
        if progress is not None:
            progress(len(results), len(probes))
    return Evaluation([results[i] for i in range(len(probes))])
