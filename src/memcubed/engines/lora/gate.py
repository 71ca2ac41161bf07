"""The consolidation gate: what an adapter's evaluation must show before it is served.

An adapter is served only if it answers at least ``LoRAConfig.recall_min`` of its facts' probes
with no context, and loses at most ``LoRAConfig.drift_max`` points on the control set against the
base model. The evaluation record and the gate's verdict are counts and means only: they are
stored on the cube and must not outlive a forgotten source's text.
"""

from __future__ import annotations

from typing import Any

from memcubed.engines.lora.config import LoRAConfig
from memcubed.engines.lora.evaluate import Evaluation

__all__ = ["evaluation_record", "gate", "gate_passed"]


def evaluation_record(before: Evaluation, after: Evaluation, n_facts: int) -> dict[str, Any]:
    """Counts and means per set and per source of a before/after evaluation whose first ``n_facts``
    results are the facts' probes and the rest the control set's."""
    split = [Evaluation(before.results[:n_facts]), Evaluation(before.results[n_facts:]),
             Evaluation(after.results[:n_facts]), Evaluation(after.results[n_facts:])]
    facts_before, control_before, facts_after, control_after = split
    per_source: dict[str, dict[str, Any]] = {}
    old, new = facts_before.by_fact(), facts_after.by_fact()
    for fact_id, row in old.items():
        per_source[fact_id] = {"probes": row["probes"], "hits_before": row["hits"], "hits_after": new[fact_id]["hits"],
                               "loss_before": row["mean_loss"], "loss_after": new[fact_id]["mean_loss"]}
    drift = (control_after.recall - control_before.recall) * 100 if control_before.results else 0.0
    return {"facts": {"before": facts_before.summary(), "after": facts_after.summary()},
            "control": {"before": control_before.summary(), "after": control_after.summary(),
                        "drift_points": round(drift, 2),
                        "loss_drift": round(control_after.mean_loss - control_before.mean_loss, 4)},
            "per_source": per_source}


def gate(record: dict[str, Any], config: LoRAConfig) -> dict[str, Any]:
    """The verdict on an ``evaluation_record``: ``passed``, the measured recall and points lost, the bounds,
    and ``reasons`` (empty when it passed)."""
    recall = float(record["facts"]["after"]["recall"])
    lost = round(-float(record["control"]["drift_points"]), 2)
    reasons: list[str] = []
    if recall < config.recall_min:
        reasons.append(f"fact recall {recall:.2f} is below recall_min {config.recall_min:.2f}")
    if lost > config.drift_max:
        reasons.append(f"control drift {lost:.1f} points lost exceeds drift_max {config.drift_max:.1f}")
    return {"passed": not reasons, "recall": recall, "recall_min": config.recall_min, "drift_points_lost": lost,
            "drift_max": config.drift_max, "control_probes": int(record["control"]["before"]["probes"]),
            "reasons": reasons}


def gate_passed(meta: dict[str, Any]) -> bool:
    """Whether a parameter cube's ``meta`` records a passed gate (cubes made before the gate existed pass)."""
    verdict = meta.get("gate")
    return not isinstance(verdict, dict) or verdict.get("passed") is not False
