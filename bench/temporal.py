"""Temporal retrieval, feature on vs off (issue 16 item 4): recall per category on LoCoMo and per question type on
LongMemEval-S dev, for each way of using time.

``PYTHONPATH=src:. python -m bench.temporal [--mode hybrid|lexical] [--types T ...] [--limit N]``

Index variants: relative times in memories resolved into the context column (``resolve_times``) or not.
Query variants (the same store, only ``TextConfig`` changes): time window ``off``, ``first`` (hits of the
window first), ``filter`` (only them), ``boost`` at several weights, and ordinal-cue boosts. LoCoMo brings no
question dates: each question is asked at its conversation's last session date (after everything was said).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import memcubed
from bench.common import write_result
from bench.embed_cache import bench_embedder
from bench.retrieval import _summarise
from bench.retrieval_longmemeval import score, summarise
from memcubed.datasets.locomo import load_locomo
from memcubed.datasets.longmemeval import load_longmemeval
from memcubed.engines.text.config import TextConfig

DATA = Path("../shared/data")  # --data-dir: the folder holding locomo/ and longmemeval/
QUERY_VARIANTS: dict[str, dict[str, Any]] = {
    "off": {"time_mode": "off"},  # no time feature at query time at all
    "first": {"time_mode": "first"},
    "filter": {"time_mode": "filter"},
    "boost0.5": {"time_boost": 0.5},
    "boost1": {"time_boost": 1.0},
    "boost2": {"time_boost": 2.0},
    "boost1+ordinal0.3": {"time_boost": 1.0, "ordinal_boost": 0.3},
    "boost1+ordinal1": {"time_boost": 1.0, "ordinal_boost": 1.0},
    "boost1+dated0.3": {"time_boost": 1.0, "dated_boost": 0.3},
    "boost1+dated0.6": {"time_boost": 1.0, "dated_boost": 0.6},
    "boost1+dated1": {"time_boost": 1.0, "dated_boost": 1.0},
    "boost1+dated1.5": {"time_boost": 1.0, "dated_boost": 1.5},
    "boost2+dated1": {"time_boost": 2.0, "dated_boost": 1.0},
}
UNRESOLVED_VARIANTS = ("off", "boost1")  # without resolved times in the index


CHOSEN: list[str] = list(QUERY_VARIANTS)  # --variants narrows it


BASE: dict[str, Any] = {"time_boost": 1.0, "dated_boost": 0.0, "ordinal_boost": 0.0}
"""What a variant does not name is off (whatever the defaults are), so each measures its own knobs."""


def _variants(resolved: bool) -> dict[str, TextConfig]:
    names = [n for n in CHOSEN if resolved or n in UNRESOLVED_VARIANTS]
    return {name: TextConfig(resolve_times=resolved, **{**BASE, **QUERY_VARIANTS[name]}) for name in names}


def locomo(data: Path, mode: str, embedder: str) -> dict[str, Any]:
    """Recall per LoCoMo category, for each index and query variant."""
    conversations = load_locomo(data / "locomo" / "locomo_dev.json")
    model = bench_embedder(embedder) if mode != "lexical" else "none"
    out: dict[str, Any] = {}
    for resolved in (False, True):
        variants = _variants(resolved)
        with tempfile.TemporaryDirectory() as tmp, memcubed.open(Path(tmp) / "l.db", embedder=model) as mc:
            mc.kernel.text.config = TextConfig(resolve_times=resolved)
            for conv in conversations:
                mc.add_many(conv.memories(f"locomo-{conv.sample_id}"))
            recalls: dict[str, dict[int, list[tuple[float, float]]]] = {v: defaultdict(list) for v in variants}
            for conv in conversations:
                asked = max(t.occurred_at for t in conv.turns if t.occurred_at is not None)
                for q in conv.questions:
                    if not q.evidence:
                        continue
                    gold = set(q.evidence)
                    for name, config in variants.items():
                        mc.kernel.text.config = config
                        hits = mc.search(q.question, namespace=f"locomo-{conv.sample_id}", k=10, mode=mode,
                                         question_date=asked).hits
                        refs = [h.cube.source.ref for h in hits]
                        recalls[name][q.category].append(
                            (len(gold & set(refs[:5])) / len(gold), len(gold & set(refs[:10])) / len(gold)))
        for name, per_cat in recalls.items():
            out[f"{'resolved' if resolved else 'unresolved'}/{name}"] = _summarise(per_cat)
    return out


def longmemeval(data: Path, mode: str, embedder: str, types: list[str] | None,
                limit: int | None) -> dict[str, Any]:
    """Turn and session recall per LongMemEval question type, for each index and query variant."""
    every = load_longmemeval(data / "longmemeval" / "longmemeval_s_dev.json.gz")
    haystacks = [h for h in every if not types or h.question_type in types][:limit]
    model = bench_embedder(embedder) if mode != "lexical" else "none"
    rows: dict[str, dict[str, list[dict[str, float | None]]]] = defaultdict(lambda: defaultdict(list))
    for hay in haystacks:
        for resolved in (False, True):
            with tempfile.TemporaryDirectory() as tmp, memcubed.open(Path(tmp) / "m.db", embedder=model) as mc:
                mc.kernel.text.config = TextConfig(resolve_times=resolved)
                mc.add_many(hay.memories("lme"))
                for name, config in _variants(resolved).items():
                    mc.kernel.text.config = config
                    hits = mc.search(hay.question, namespace="lme", k=10, mode=mode,
                                     question_date=hay.question_date).hits
                    key = f"{'resolved' if resolved else 'unresolved'}/{name}"
                    rows[key][hay.question_type].append(score(hay, [h.cube.source.ref or "" for h in hits]))
    return {"questions": len(haystacks), "recall": {k: summarise(v) for k, v in rows.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--mode", default="hybrid", choices=("hybrid", "lexical"))
    parser.add_argument("--embedder", default="local")
    parser.add_argument("--types", nargs="*", default=None, help="LongMemEval question types (default: all)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--skip", nargs="*", default=(), choices=("locomo", "longmemeval"))
    parser.add_argument("--variants", nargs="*", default=None, choices=sorted(QUERY_VARIANTS))
    parser.add_argument("--name", default=None, help="results file suffix (default: the mode)")
    args = parser.parse_args()
    if args.variants:
        CHOSEN[:] = args.variants
    result: dict[str, Any] = {"mode": args.mode, "embedder": args.embedder if args.mode != "lexical" else "none",
                              "embedding_cache": bool(os.environ.get("MEMCUBED_BENCH_EMBED_CACHE")),
                              "query_variants": QUERY_VARIANTS, "variant_base": BASE,
                              "locomo_question_date": "last session date"}
    if "locomo" not in args.skip:
        result["locomo"] = locomo(args.data_dir, args.mode, args.embedder)
        print(json.dumps({k: v["temporal"] for k, v in result["locomo"].items()}), flush=True)
    if "longmemeval" not in args.skip:
        result["longmemeval"] = longmemeval(args.data_dir, args.mode, args.embedder, args.types, args.limit)
        result["longmemeval"]["types"] = args.types or "all"
    result["variants_run"] = CHOSEN
    write_result(f"temporal_{args.name or args.mode}", result)


if __name__ == "__main__":
    main()
