"""Paired comparison of session-stage settings on LongMemEval-S and LoCoMo dev: per-question recall for each
``TextConfig`` variant, per type, and the paired bootstrap difference of each variant from the first.

``python -m bench.session_sweep <folder> '<json>' '<json>'... [--embedder static] [--tag T] [--skip-locomo]``
reads the stores ``python -m bench.tune_retrieval build <folder>`` wrote and writes
``bench/results/session_sweep[_<tag>].json``. The first config is the base of every comparison. Dev data only.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import retrieval_longmemeval
from bench.common import write_result
from bench.embed_cache import bench_embedder
from bench.paired import paired_difference
from bench.tune_retrieval import lme_stores, locomo_questions
from memcubed.engines.text.config import TextConfig

LME_KEYS = ("turn_r@5", "turn_r@10", "sess_all@5", "sess_all@10")
LOCOMO_KEYS = ("r@5", "r@10")


def lme_rows(folder: Path, config: TextConfig, model: Any) -> list[dict[str, Any]]:
    """One row per LongMemEval question whose store exists: its type and metrics (``None``: not applicable)."""
    rows: list[dict[str, Any]] = []
    for mc, hay in lme_stores(folder, config, model, None):
        hits = mc.search(hay.question, namespace="lme", k=10, question_date=hay.question_date).hits
        rows.append({"type": hay.question_type,
                     **retrieval_longmemeval.score(hay, [h.cube.source.ref or "" for h in hits])})
    return rows


def locomo_rows(folder: Path, config: TextConfig, model: Any) -> list[dict[str, Any]]:
    """One row per LoCoMo question with evidence: its category and turn recall at 5 and 10."""
    rows: list[dict[str, Any]] = []
    for mc, namespace, q in locomo_questions(folder, config, model):
        refs = [h.cube.source.ref for h in mc.search(q.question, namespace=namespace, k=10).hits]
        gold = set(q.evidence)
        rows.append({"type": str(q.category), "r@5": len(gold & set(refs[:5])) / len(gold),
                     "r@10": len(gold & set(refs[:10])) / len(gold)})
    return rows


def table(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Mean ×100 of each metric per type and over all (skipping ``None``)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["type"]].append(row)
        groups["all"].append(row)
    out: dict[str, dict[str, float]] = {}
    for kind, group in sorted(groups.items()):
        out[kind] = {"n": len(group)}
        for key in keys:
            values = [r[key] for r in group if r[key] is not None]
            out[kind][key] = round(100 * sum(values) / len(values), 1) if values else 0.0
    return out


def paired(base: list[dict[str, Any]], other: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """The paired bootstrap difference ``other - base`` per metric, over the questions it applies to."""
    out: dict[str, Any] = {}
    for key in keys:
        pairs = [(a[key], b[key]) for a, b in zip(base, other, strict=True) if a[key] is not None]
        out[key] = paired_difference([a for a, _ in pairs], [b for _, b in pairs])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.session_sweep")
    parser.add_argument("folder", type=Path)
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--embedder", default="local")
    parser.add_argument("--tag", default="")
    parser.add_argument("--skip-locomo", action="store_true")
    args = parser.parse_args()
    model = bench_embedder(args.embedder)
    runs: list[dict[str, Any]] = []
    for raw in args.configs:
        overrides = json.loads(raw)
        config = TextConfig(**overrides)
        lme = lme_rows(args.folder, config, model)
        loc = [] if args.skip_locomo else locomo_rows(args.folder, config, model)
        run = {"config": overrides, "lme": table(lme, LME_KEYS), "locomo": table(loc, LOCOMO_KEYS) if loc else {},
               "_lme_rows": lme, "_locomo_rows": loc}
        if runs:
            run["paired_lme"] = paired(runs[0]["_lme_rows"], lme, LME_KEYS)
            if loc:
                run["paired_locomo"] = paired(runs[0]["_locomo_rows"], loc, LOCOMO_KEYS)
        runs.append(run)
        brief = {"config": overrides, "lme_all": run["lme"]["all"], "locomo_all": run["locomo"].get("all"),
                 "paired_lme": {k: (v["mean"], v["ci95"]) for k, v in run.get("paired_lme", {}).items()},
                 "paired_locomo": {k: (v["mean"], v["ci95"]) for k, v in run.get("paired_locomo", {}).items()}}
        print(json.dumps(brief), flush=True)
    for run in runs:
        run.pop("_locomo_rows")
        run["lme_rows"] = run.pop("_lme_rows")
    write_result(f"session_sweep_{args.tag}" if args.tag else "session_sweep",
                 {"folder": str(args.folder), "embedder": args.embedder, "runs": runs})


if __name__ == "__main__":
    main()
