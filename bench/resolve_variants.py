"""Candidate contradiction signals for the local resolver, written down before any pair was scored (contra2).

Every variant starts from the gated four-answer decision (``decide`` on the gated probabilities: the most
related known fact and its likeliest answer). When that is ``add`` the variant adds. Otherwise a detector
scores "does the known fact (the target) still hold after the new one?" (positive: no longer), and a rule
turns the score into the decision:

- ``alone``: contradict when the score is above the threshold; a ``changed`` answer otherwise adds; any other
  answer stands;
- ``word``: as ``alone``, and the new fact must also say a change (``says_changed``);
- ``union``: contradict when the default would (``changed`` and a change word), or when the score is above the
  threshold and the new fact says a change; otherwise as the default.

Detectors (``engines.text.still_true``): ``ask2`` (the yes/no prompt, log-odds of "no" averaged over both
layouts), ``ask1`` (known fact first only), ``cloze`` ("no longer" vs "still" shift of the known fact's
likelihood after the new one), ``pmi`` (the cloze shift less the same shift without the new fact).
Thresholds in nats: three for the prompt, five for the cloze ones.

Before any labelled pair was scored, two made-up pairs were probed ("Zoe lives in Rome." against "Zoe moved
from Rome to Madrid." / "... with her cat."): the yes/no prompt answered "no" to both (log-odds 1.14 and
1.14), the cloze shift was 2.09 and -0.45 (pmi 1.21 and -1.33); so the cloze thresholds reach 2.

Decision rule, fixed here before scoring: among the variants with **0 wrong contradicts** (single, a
contradict on a pair not labelled contradict) **on the even half** and **more right contradicts on the even
half than ``gated_default``**, the highest even-half single accuracy; ties go to more right contradicts on the
even half, then to the earlier variant in :data:`VARIANTS`. It is adopted only if, on the odd half, it also has
0 wrong contradicts, more right ones than ``gated_default``, and accuracy not lower beyond noise (the paired
95 % interval of variant − default reaches 0 or above) on both halves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

THRESHOLDS = {"ask2": (0.0, 1.0, 2.0), "ask1": (0.0, 1.0, 2.0), "cloze": (0.0, 0.5, 1.0, 1.5, 2.0),
              "pmi": (0.0, 0.5, 1.0, 1.5, 2.0)}
RULES = ("alone", "word", "union")
VARIANTS = [(detector, threshold, rule) for rule in RULES for detector, ts in THRESHOLDS.items() for threshold in ts]
"""(detector, threshold, rule) for every candidate: 48 in all."""


def name(detector: str, threshold: float, rule: str) -> str:
    return f"{rule}_{detector}_{threshold:g}"


def detectors(lm: Any) -> dict[str, Callable[[str, str], float]]:
    """Each detector as ``score(known, new)``, memoised per pair (the bench asks again for the same pairs)."""
    from memcubed.engines.text.still_true import cloze_shift, still_log_odds

    memo: dict[tuple[str, str, str], float] = {}

    def once(kind: str, fn: Callable[[str, str], float]) -> Callable[[str, str], float]:
        def score(known: str, new: str) -> float:
            key = (kind, known, new)
            if key not in memo:
                memo[key] = fn(known, new)
            return memo[key]
        return score

    return {"ask2": once("ask2", lambda k, n: still_log_odds(lm, k, n)),
            "ask1": once("ask1", lambda k, n: still_log_odds(lm, k, n, both_orders=False)),
            "cloze": once("cloze", lambda k, n: cloze_shift(lm, k, n)),
            "pmi": once("pmi", lambda k, n: cloze_shift(lm, k, n, unconditioned=True))}


def apply(resolution: Any, new: str, known: list[str], score: Callable[[str, str], float], threshold: float,
          rule: str) -> Any:
    """The variant's decision from the gated one (``resolution``) for ``new`` against ``known``."""
    from memcubed.engines.text.resolve_local import says_changed
    from memcubed.schemas.remember import Resolution

    if resolution.action == "add" or resolution.target is None:
        return resolution
    target = known[resolution.target - 1]
    changed = says_changed(new, target)
    fires = score(target, new) > threshold
    if rule == "alone":
        contradict = fires
    elif rule == "word":
        contradict = fires and changed
    else:
        contradict = changed and (fires or resolution.action == "contradict")
    if contradict:
        return Resolution(action="contradict", target=resolution.target)
    return Resolution(action="add") if resolution.action == "contradict" else resolution


def contradicts(pairs: list[dict[str, Any]], chosen: list[Any], half: int) -> dict[str, int]:
    """Right and wrong contradicts (single) on one half."""
    rows = list(zip(pairs, chosen, strict=True))[half::2]
    return {"right": sum(1 for p, c in rows if c.action == "contradict" and p["action"] == "contradict"),
            "wrong": sum(1 for p, c in rows if c.action == "contradict" and p["action"] != "contradict")}


def pick(table: dict[str, dict[str, Any]], default: dict[str, Any]) -> dict[str, Any]:
    """The decision rule of the module docstring over ``table`` (variant name -> its summary)."""
    eligible = [(n, v) for n, v in table.items()
                if v["contradicts"]["even"]["wrong"] == 0
                and v["contradicts"]["even"]["right"] > default["contradicts"]["even"]["right"]]
    if not eligible:
        return {"picked": None, "adopted": False, "why": "no variant passes the even half"}
    order = {n: i for i, n in enumerate(table)}
    best, v = max(eligible, key=lambda nv: (nv[1]["accuracy"]["even"], nv[1]["contradicts"]["even"]["right"],
                                            -order[nv[0]]))
    odd_ok = (v["contradicts"]["odd"]["wrong"] == 0
              and v["contradicts"]["odd"]["right"] > default["contradicts"]["odd"]["right"])
    noise_ok = all(v["vs_default"][h]["within_noise_or_better"] for h in ("even", "odd"))
    return {"picked": best, "adopted": odd_ok and noise_ok, "odd_contradicts_ok": odd_ok,
            "accuracy_within_noise": noise_ok}
