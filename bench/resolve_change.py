"""The local resolver's contradicts on false contradictions that say a change: a held-out check (contra2).

``python -m bench.resolve_change`` reads ``bench/resolve_pairs_change.json`` (24 pairs written and labelled
before any was scored: 12 false contradictions whose new fact has a change word the known fact lacks, 12 real
ones) and runs ``resolve_by_likelihood`` on each pair's known fact alone under every ``contradict`` signal
(``cloze``: the one chosen on ``bench/resolve_pairs.json``; ``change``: the rule before; ``model``), plus, for
information only, the cloze rule at larger margins.

Decision rule, fixed before scoring: ``cloze`` stays the default only if it makes **0 wrong contradicts** here
(on both halves), the criterion it was adopted by; otherwise the default returns to ``change``.
Result: printed (the brief names no result file).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

PAIRS = Path(__file__).with_name("resolve_pairs_change.json")
MARGINS = (0.5, 1.0, 1.5, 2.0)


def run() -> dict[str, Any]:
    import torch

    from memcubed.backends.models import KVLanguageModel, make_language_model
    from memcubed.engines.text.resolve_local import CONTRADICT_SIGNALS, resolve_by_likelihood, says_changed
    from memcubed.engines.text.still_true import cloze_shift

    torch.set_num_threads(1)
    lm = make_language_model("local")
    assert isinstance(lm, KVLanguageModel)
    pairs = json.loads(PAIRS.read_text(encoding="utf-8"))["pairs"]
    began = time.perf_counter()
    rows = []
    for pair in pairs:
        chosen = {s: resolve_by_likelihood(lm, pair["new"], [pair["known"]], contradict=s) for s in CONTRADICT_SIGNALS}
        shift = cloze_shift(lm, pair["known"], pair["new"])
        related = chosen["model"].resolution.action != "add"
        changed = says_changed(pair["new"], pair["known"])
        rows.append({"label": pair["action"], "cloze_shift": round(shift, 3),
                     **{s: chosen[s].resolution.action for s in CONTRADICT_SIGNALS},
                     **{f"cloze_{m:g}": "contradict" if related and changed and shift > m else "-" for m in MARGINS}})
    columns = [*CONTRADICT_SIGNALS, *(f"cloze_{m:g}" for m in MARGINS)]
    counts = {c: {h: {"right": sum(r[c] == "contradict" and r["label"] == "contradict" for r in rows[i::2]),
                      "wrong": sum(r[c] == "contradict" and r["label"] != "contradict" for r in rows[i::2])}
                  for h, i in (("even", 0), ("odd", 1))} for c in columns}
    keep = all(counts["cloze"][h]["wrong"] == 0 for h in ("even", "odd"))
    return {"pairs": len(pairs), "contradicts": counts, "cloze_stays_default": keep, "rows": rows,
            "seconds": round(time.perf_counter() - began, 1)}


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
