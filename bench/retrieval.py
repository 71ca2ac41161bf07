"""Retrieval quality on LoCoMo: evidence recall@5/@10, hybrid vs lexical-only vs vector-only, one run."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import memcubed
from bench.common import write_result
from bench.embed_cache import bench_embedder
from bench.stores import result_name, store_locations
from memcubed.datasets.locomo import CATEGORIES, Question, load_locomo

MODES = ("hybrid", "lexical", "vector")


def run(data: Path, embedder: str = "local", backend: str = "sqlite") -> dict[str, Any]:
    """Index every turn of every conversation in one store of ``backend``, ask every question with evidence in
    each mode."""
    conversations = load_locomo(data)
    model = bench_embedder(embedder)
    with store_locations(backend) as new, memcubed.open(new(), embedder=model) as mc:
        started = time.perf_counter()
        for conv in conversations:
            mc.add_many(conv.memories(f"locomo-{conv.sample_id}"))
        index_s = time.perf_counter() - started
        settings = mc.kernel.text.config.model_dump()
        query_runtime = getattr(mc.kernel.embedder, "query_runtime_in_use", "n/a")  # int8 or fp32 query vectors
        # recalls[mode][category] -> list of (recall@5, recall@10)
        recalls: dict[str, dict[int, list[tuple[float, float]]]] = {m: defaultdict(list) for m in MODES}
        asked = 0
        for conv in conversations:
            for q in conv.questions:
                if q.evidence:
                    asked += 1
                    ask(mc, conv.sample_id, q, recalls)
    table = {mode: _summarise(per_cat) for mode, per_cat in recalls.items()}
    return {
        "data": str(data),
        "conversations": [c.sample_id for c in conversations],
        "turns": sum(len(c.turns) for c in conversations),
        "questions_with_evidence": asked,
        "questions_dropped_no_evidence": sum(c.dropped_questions for c in conversations),
        "evidence_ids_dropped": sum(c.dropped_evidence for c in conversations),
        "embedder": embedder,
        "backend": backend,
        "embedding_cache": bool(os.environ.get("MEMCUBED_BENCH_EMBED_CACHE")),
        "query_runtime": query_runtime,
        "index_seconds": round(index_s, 2),
        "text_config": settings,
        "recall": table,
        "reference_bm25_rank_bm25": {"all": {"r@5": 52.8, "r@10": 61.0}},
    }


def ask(mc: memcubed.Memcubed, sample_id: str, q: Question,
        recalls: dict[str, dict[int, list[tuple[float, float]]]], modes: tuple[str, ...] = MODES) -> None:
    """Ask ``q`` (which has evidence) in each of ``modes``; add its recall@5 and @10 to ``recalls[mode][category]``."""
    gold = set(q.evidence)
    for mode in modes:
        hits = mc.search(q.question, namespace=f"locomo-{sample_id}", k=10, mode=mode).hits
        refs = [h.cube.source.ref for h in hits]
        recalls[mode][q.category].append(
            (len(gold & set(refs[:5])) / len(gold), len(gold & set(refs[:10])) / len(gold)))


def _summarise(per_cat: dict[int, list[tuple[float, float]]]) -> dict[str, dict[str, float]]:
    def agg(rows: list[tuple[float, float]]) -> dict[str, float]:
        n = len(rows)
        return {"n": n, "r@5": round(100 * sum(r[0] for r in rows) / n, 1),
                "r@10": round(100 * sum(r[1] for r in rows) / n, 1)}

    out = {CATEGORIES[c]: agg(rows) for c, rows in sorted(per_cat.items())}
    out["cat1-4"] = agg([r for c, rows in per_cat.items() if c != 5 for r in rows])
    out["all"] = agg([r for rows in per_cat.values() for r in rows])
    return out


def main(data: Path, backend: str = "sqlite") -> dict[str, Any]:
    """Run and write ``bench/results/retrieval_locomo.json`` (``retrieval_locomo_postgres.json`` on PostgreSQL)."""
    result = run(data, backend=backend)
    write_result(result_name("retrieval_locomo", backend), result)
    return result
