"""Retrieval quality on LongMemEval-S dev: turn recall@5/@10 and session recall_all/any@5/@10 per question type,
hybrid vs lexical-only vs vector-only, with ingest time per haystack; one run.

``python -m bench --only retrieval_longmemeval [--limit N]``. Each question's ~490-turn haystack is indexed in a
store of its own (as a user with one history would have it) and the question is asked at its ``question_date``.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import memcubed
from bench.common import write_result
from bench.embed_cache import bench_embedder
from bench.stores import result_name, store_locations
from memcubed.datasets.longmemeval import Haystack, load_longmemeval

MODES = ("hybrid", "lexical", "vector")
DATA = Path("../shared/data/longmemeval/longmemeval_s_dev.json.gz")
KS = (5, 10)


def score(haystack: Haystack, refs: list[str]) -> dict[str, float | None]:
    """The metrics of one ranked list of source refs (best first) for ``haystack``."""
    gold = haystack.gold_turns
    out: dict[str, float | None] = {}
    for k in KS:
        top = refs[:k]
        sessions = {ref.rsplit("#", 1)[0] for ref in top}
        out[f"turn_r@{k}"] = len(gold & set(top)) / len(gold) if gold else None
        out[f"sess_all@{k}"] = float(haystack.answer_sessions <= sessions) if haystack.answer_sessions else None
        out[f"sess_any@{k}"] = float(bool(haystack.answer_sessions & sessions)) if haystack.answer_sessions else None
    return out


def run(data: Path = DATA, *, embedder: str = "local", limit: int | None = None, backend: str = "sqlite"
        ) -> dict[str, Any]:
    """Index each haystack in its own store of ``backend`` and ask its question in every mode."""
    haystacks = load_longmemeval(data)[:limit]
    rows: dict[str, dict[str, list[dict[str, float | None]]]] = {m: defaultdict(list) for m in MODES}
    ingest_s: list[float] = []
    model = bench_embedder(embedder)
    settings: dict[str, Any] = {}
    query_runtime = "n/a"
    with store_locations(backend) as new:
        for hay in haystacks:
            with memcubed.open(new(), embedder=model) as mc:
                started = time.perf_counter()
                mc.add_many(hay.memories("lme"))
                ingest_s.append(time.perf_counter() - started)
                settings = mc.kernel.text.config.model_dump()
                query_runtime = getattr(mc.kernel.embedder, "query_runtime_in_use", "n/a")
                for mode in MODES:
                    hits = mc.search(hay.question, namespace="lme", k=max(KS), mode=mode,
                                     question_date=hay.question_date).hits
                    rows[mode][hay.question_type].append(score(hay, [h.cube.source.ref or "" for h in hits]))
    return {
        "data": str(data),
        "questions": len(haystacks),
        "turns": sum(len(h.turns) for h in haystacks),
        "questions_without_gold_turns": sum(1 for h in haystacks if not h.gold_turns),
        "embedder": embedder,
        "backend": backend,
        "embedding_cache": not isinstance(model, str),
        "query_runtime": query_runtime,
        "text_config": settings,
        "ingest_seconds_per_haystack": {"median": round(statistics.median(ingest_s), 2),
                                        "max": round(max(ingest_s), 2)} if ingest_s else {},
        "recall": {mode: summarise(per_type) for mode, per_type in rows.items()},
        "reference_bm25_dev": {"all": {"turn_r@5": 69.1, "turn_r@10": 78.9}},
    }


def summarise(per_type: dict[str, list[dict[str, float | None]]]) -> dict[str, dict[str, float | int]]:
    """Mean of every metric (×100) per question type and over all, skipping questions a metric does not apply to."""
    def agg(rows: list[dict[str, float | None]]) -> dict[str, float | int]:
        out: dict[str, float | int] = {"n": len(rows)}
        for key in rows[0] if rows else ():
            values = [r[key] for r in rows if r[key] is not None]
            out[key] = round(100 * sum(v for v in values if v is not None) / len(values), 1) if values else 0.0
        return out

    table = {kind: agg(rows) for kind, rows in sorted(per_type.items())}
    table["all"] = agg([r for rows in per_type.values() for r in rows])
    return table


def main(data: Path = DATA, limit: int | None = None, backend: str = "sqlite") -> dict[str, Any]:
    """Run and write ``bench/results/retrieval_longmemeval.json`` (``..._postgres.json`` on PostgreSQL)."""
    result = run(data, limit=limit, backend=backend)
    write_result(result_name("retrieval_longmemeval", backend), result)
    return result
