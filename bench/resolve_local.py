"""How often the packaged SmolLM2 chooses the right resolution by likelihood, on hand-labelled pairs.

``python -m bench.resolve_local`` reads ``bench/resolve_pairs.json`` (known fact, new fact, action; written by
hand from LoCoMo dev facts, see its ``about``) and asks ``engines.text.resolve_local`` for each pair twice:

- ``single``: the pair's known fact alone (is the action right?);
- ``among3``: the known fact among two others taken from pairs of other subjects (are action and target
  right?), as the kernel shows up to five nearest known facts.

All from the same forward passes: ``raw`` (the model's answer probabilities), ``calibrated`` (divided by the
prompt's content-free prior), ``gated`` (known facts sharing under ``MIN_OVERLAP`` of their words are ``other``
without the model), ``gated_no_contradict`` (gated, a ``changed`` answer adds) and ``gated_default`` (the
default: gated, and a ``changed`` answer adds unless the new fact says a change, ``says_changed``).
Confusion matrices (``label->chosen``) are given per half. Caveat: the hand-written unrelated pairs share no
content word at all, which flatters the gate; the kernel's candidates are the nearest facts and share more.
Accuracy is given on all pairs and on the even- and odd-indexed halves, next to "always add" (what the
kernel does without a resolver), with the paired bootstrap interval of the difference.
``contradict_variants``: the contradiction signals of ``bench.resolve_variants`` (written before scoring, with
their decision rule) on the gated decisions, against ``gated_default``; ``detector_scores``: each detector's
score on each pair's own known fact. The variant picked here was then refuted on held-out false
contradictions that say a change (``bench/resolve_change.py``).
Result: ``bench/results/resolve_local_smollm2.json``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import write_result
from bench.paired import paired_difference
from bench.resolve_variants import VARIANTS, apply, contradicts, detectors, name, pick

PAIRS = Path(__file__).with_name("resolve_pairs.json")


def _subject(text: str) -> str:
    return text.split()[0]


def _accuracy(hits: list[float]) -> dict[str, Any]:
    return {"all": round(100 * sum(hits) / len(hits), 1), "even": round(100 * sum(hits[0::2]) / len(hits[0::2]), 1),
            "odd": round(100 * sum(hits[1::2]) / len(hits[1::2]), 1)}


def _score(pairs: list[dict[str, Any]], decided: list[tuple[Any, Any]]) -> dict[str, Any]:
    """Accuracy of the single and among-3 decisions, with the always-add baseline's paired interval."""
    always_add = [float(p["action"] == "add") for p in pairs]
    single = [float(one.action == p["action"]) for p, (one, _) in zip(pairs, decided, strict=True)]
    among = [float(three.action == p["action"] and (three.target is None if p["action"] == "add" else
                                                      three.target == 2))
             for p, (_, three) in zip(pairs, decided, strict=True)]
    confusion = [Counter(f"{p['action']}->{one.action}" for p, (one, _) in list(zip(pairs, decided, strict=True))[h::2])
                 for h in (0, 1)]
    return {"single": {"accuracy": _accuracy(single), "vs_always_add": paired_difference(always_add, single),
                       "confusion_even": dict(sorted(confusion[0].items())),
                       "confusion_odd": dict(sorted(confusion[1].items()))},
            "among3": {"accuracy": _accuracy(among), "vs_always_add": paired_difference(always_add, among)}}


def _no_contradict(resolution: Any) -> Any:
    """``changed`` adds: no contradiction from the local model at all."""
    from memcubed.schemas.remember import Resolution

    return Resolution(action="add") if resolution.action == "contradict" else resolution


def _needs_change(resolution: Any, new: str, known: list[str]) -> Any:
    """``changed`` adds unless the new fact says a change against its target (the default)."""
    from memcubed.engines.text.resolve_local import says_changed
    from memcubed.schemas.remember import Resolution

    if resolution.action == "contradict" and not says_changed(new, known[resolution.target - 1]):
        return Resolution(action="add")
    return resolution


def _half_hits(pairs: list[dict[str, Any]], decided: list[tuple[Any, Any]], half: int) -> list[float]:
    return [float(one.action == p["action"]) for p, (one, _) in list(zip(pairs, decided, strict=True))[half::2]]


def _summary(pairs: list[dict[str, Any]], decided: list[tuple[Any, Any]], default: list[tuple[Any, Any]],
             ) -> dict[str, Any]:
    scored = _score(pairs, decided)
    singles = [one for one, _ in decided]
    return {"accuracy": scored["single"]["accuracy"], "among3": scored["among3"]["accuracy"],
            "contradicts": {h: contradicts(pairs, singles, i) for h, i in (("even", 0), ("odd", 1))},
            "vs_default": {h: paired_difference(_half_hits(pairs, default, i), _half_hits(pairs, decided, i))
                           for h, i in (("even", 0), ("odd", 1))},
            "confusion_even": scored["single"]["confusion_even"], "confusion_odd": scored["single"]["confusion_odd"]}


def _variants(lm: Any, pairs: list[dict[str, Any]], gated: list[tuple[Any, Any]],
              default: list[tuple[Any, Any]]) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Every contradiction variant of ``bench.resolve_variants`` on the gated decisions, and the pick."""
    score = detectors(lm)
    table: dict[str, Any] = {}
    for detector, threshold, rule in VARIANTS:
        decided = []
        for n, pair in enumerate(pairs):
            known = _known3(pairs, n)
            one, three = gated[n]
            decided.append((apply(one, pair["new"], [pair["known"]], score[detector], threshold, rule),
                            apply(three, pair["new"], known, score[detector], threshold, rule)))
        table[name(detector, threshold, rule)] = _summary(pairs, decided, default)
    base = _summary(pairs, default, default)
    scores = [{d: round(score[d](p["known"], p["new"]), 3) for d in score} for p in pairs]
    return {"gated_default": base, "variants": table, "decision": pick(table, base)}, scores


def _known3(pairs: list[dict[str, Any]], n: int) -> list[str]:
    """The pair's known fact between two known facts of other subjects (the among-3 setting)."""
    pair = pairs[n]
    others = [p["known"] for p in pairs[n + 1:] + pairs[:n] if _subject(p["known"]) != _subject(pair["known"])]
    return [others[0], pair["known"], others[1]]


def run() -> dict[str, Any]:
    import torch

    from memcubed.backends.models import KVLanguageModel, make_language_model
    from memcubed.engines.text.resolve_local import (
        MIN_OVERLAP,
        calibrated,
        content_free,
        decide,
        label_probabilities,
        overlap,
    )

    torch.set_num_threads(1)  # the machine is small and shared: more threads only contend
    lm = make_language_model("local")
    assert isinstance(lm, KVLanguageModel)
    pairs = json.loads(PAIRS.read_text(encoding="utf-8"))["pairs"]
    began = time.perf_counter()
    prior = content_free(lm)
    raw: list[tuple[Any, Any]] = []
    cal: list[tuple[Any, Any]] = []
    gated: list[tuple[Any, Any]] = []
    no_contradict: list[tuple[Any, Any]] = []
    default: list[tuple[Any, Any]] = []
    for n, pair in enumerate(pairs):
        known = _known3(pairs, n)
        three = label_probabilities(lm, pair["new"], known)  # the model on every pair (min_overlap 0)
        one = three[1:2]
        raw.append((decide(one), decide(three)))
        cal.append((decide([calibrated(p, prior) for p in one]), decide([calibrated(p, prior) for p in three])))
        unrelated = {"same": 0.0, "more": 0.0, "changed": 0.0, "other": 1.0}
        kept = [p if overlap(pair["new"], k) >= MIN_OVERLAP else unrelated for p, k in zip(three, known, strict=True)]
        gated.append((decide(kept[1:2]), decide(kept)))
        no_contradict.append((_no_contradict(gated[-1][0]), _no_contradict(gated[-1][1])))
        default.append((_needs_change(gated[-1][0], pair["new"], [known[1]]),
                        _needs_change(gated[-1][1], pair["new"], known)))
    variants, scores = _variants(lm, pairs, gated, default)
    return {"model": "smollm2-135m-instruct (packaged, fp32, 1 torch thread)", "pairs": len(pairs),
            "labels": dict(Counter(p["action"] for p in pairs)), "content_free_prior": prior,
            "raw": _score(pairs, raw), "calibrated": _score(pairs, cal),
            "gated": {"min_overlap": MIN_OVERLAP, **_score(pairs, gated)},
            "gated_no_contradict": _score(pairs, no_contradict),
            "gated_default": {"min_overlap": MIN_OVERLAP, **_score(pairs, default),
                              "single_vs_gated": {k: paired_difference(_half_hits(pairs, gated, h),
                                                                       _half_hits(pairs, default, h))
                                                  for k, h in (("even", 0), ("odd", 1))}},
            "always_add": _accuracy([float(p["action"] == "add") for p in pairs]),
            "contradict_variants": variants, "detector_scores": scores,
            "seconds": round(time.perf_counter() - began, 1)}


if __name__ == "__main__":
    result = run()
    write_result("resolve_local_smollm2", result)
    print(json.dumps(result, indent=1))
