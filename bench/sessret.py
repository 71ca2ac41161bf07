"""Interleaved paired comparison of retrieval settings on both dev sets, by half and by category / type.

``python -m bench.sessret <folder> '<base json>' '<json>'... [--half a|b] [--tag T]`` opens each store that
``python -m bench.tune_retrieval build <folder>`` wrote once and asks each question with every setting in turn
(so that all settings see the same machine load), then prints, per benchmark, category / type and metric, each
setting's figure and its paired bootstrap difference from the base (``bench/paired.py``). LoCoMo: turn recall @5
and @10 by category; LongMemEval-S: turn recall @5 / @10 and session recall_all @5 / @10 by question type.
Halves as in ``bench.misses``: ``a`` the even-indexed questions (LoCoMo: among those with evidence, in file
order; LongMemEval-S: the haystack index), ``b`` the odd ones. The per-question rows go to
``bench/results/sessret_<tag>.json`` when ``--tag`` is given. Dev data only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import memcubed
from bench import retrieval_longmemeval
from bench.common import write_result
from bench.embed_cache import bench_embedder
from bench.misses import _in_half
from bench.paired import paired_difference
from bench.tune_retrieval import LME, LOCOMO
from memcubed.datasets.locomo import CATEGORIES, load_locomo
from memcubed.datasets.longmemeval import load_longmemeval
from memcubed.engines.text.config import TextConfig

LME_KEYS = ("turn_r@5", "turn_r@10", "sess_all@5", "sess_all@10")
LOCOMO_KEYS = ("r@5", "r@10")


def _locomo(folder: Path, configs: list[TextConfig], half: str | None, model: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    index = -1
    with memcubed.open(folder / "locomo.db", embedder=model) as mc:
        for conv in load_locomo(LOCOMO):
            for q in conv.questions:
                if not q.evidence:
                    continue
                index += 1
                if not _in_half(index, half):
                    continue
                gold = set(q.evidence)
                row: dict[str, Any] = {"i": index, "type": CATEGORIES[q.category], "runs": []}
                for config in configs:
                    mc.kernel.text.config = config
                    t0 = time.perf_counter()
                    hits = mc.search(q.question, namespace=f"locomo-{conv.sample_id}", k=10).hits
                    ms = (time.perf_counter() - t0) * 1000
                    refs = [h.cube.source.ref for h in hits]
                    row["runs"].append({"r@5": len(gold & set(refs[:5])) / len(gold),
                                        "r@10": len(gold & set(refs)) / len(gold), "ms": ms})
                rows.append(row)
    return rows


def _lme(folder: Path, configs: list[TextConfig], half: str | None, model: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i, hay in enumerate(load_longmemeval(LME)):
        path = folder / "lme" / f"{i:03d}.db"
        if not _in_half(i, half) or not path.exists():
            continue
        row: dict[str, Any] = {"i": i, "type": hay.question_type, "runs": []}
        with memcubed.open(path, embedder=model) as mc:
            for config in configs:
                mc.kernel.text.config = config
                t0 = time.perf_counter()
                hits = mc.search(hay.question, namespace="lme", k=10, question_date=hay.question_date).hits
                ms = (time.perf_counter() - t0) * 1000
                scored = retrieval_longmemeval.score(hay, [h.cube.source.ref or "" for h in hits])
                row["runs"].append({**{k: scored[k] for k in LME_KEYS}, "ms": ms})
        rows.append(row)
    return rows


def summary(rows: list[dict[str, Any]], keys: tuple[str, ...], n_configs: int) -> dict[str, Any]:
    """Per type (and ``all``) and metric: the first setting's mean ×100 and, for each other setting, its mean,
    its paired difference from the first (points), the 95 % CI and the questions it does better / worse on."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["type"]].append(row)
        groups["all"].append(row)
    out: dict[str, Any] = {}
    for kind, group in sorted(groups.items()):
        out[kind] = {"n": len(group)}
        for key in keys:
            usable = [r for r in group if r["runs"][0][key] is not None]
            if not usable:
                continue
            base = [float(r["runs"][0][key]) for r in usable]
            entry: dict[str, Any] = {"base": round(100 * statistics.mean(base), 1)}
            for c in range(1, n_configs):
                other = [float(r["runs"][c][key]) for r in usable]
                d = paired_difference(base, other)
                entry[str(c)] = [round(100 * statistics.mean(other), 1), d["mean"], *d["ci95"], d["better"],
                                 d["worse"]]
            out[kind][key] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sessret")
    parser.add_argument("folder", type=Path)
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--half", choices=("a", "b"))
    parser.add_argument("--tag", default="")
    parser.add_argument("--skip-locomo", action="store_true")
    parser.add_argument("--skip-lme", action="store_true")
    args = parser.parse_args()
    overrides = [json.loads(raw) for raw in args.configs]
    configs = [TextConfig(**o) for o in overrides]
    model = bench_embedder("local")
    loc = [] if args.skip_locomo else _locomo(args.folder, configs, args.half, model)
    lme = [] if args.skip_lme else _lme(args.folder, configs, args.half, model)
    p50 = {name: [round(statistics.median(r["runs"][c]["ms"] for r in rows), 1) for c in range(len(configs))]
           for name, rows in (("locomo", loc), ("lme", lme)) if rows}
    result = {"configs": overrides, "half": args.half, "p50_ms": p50,
              "locomo": summary(loc, LOCOMO_KEYS, len(configs)) if loc else {},
              "lme": summary(lme, LME_KEYS, len(configs)) if lme else {}}
    print(json.dumps(result, indent=1))
    if args.tag:
        write_result(f"sessret_{args.tag}", {**result, "locomo_rows": loc, "lme_rows": lme})


if __name__ == "__main__":
    main()
