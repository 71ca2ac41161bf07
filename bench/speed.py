"""Write throughput, file size and search latency at 10k, 100k and 1M cubes on one SQLite file, query embedding
timed apart from the index.

Texts are LoCoMo turns and observations with a distinguishing suffix. Their vectors come from the
real embedder for the base texts, jittered per copy, and are handed to ``add_many(vectors=...)``
so that index time is measured apart from embedding; embedding throughput is measured separately.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import memcubed
from bench.common import percentile, write_result
from memcubed.backends.embedders.querycache import QUERY_CACHE
from memcubed.composition import build_embedder
from memcubed.datasets.locomo import load_locomo

SIZES = (10_000, 100_000, 1_000_000)
BATCH = 1_000
QUERIES = 200


def corpus(data: Path) -> tuple[list[str], list[str]]:
    conversations = load_locomo(data)
    texts = [t.document for c in conversations for t in c.turns]
    questions = [q.question for c in conversations for q in c.questions][:QUERIES]
    return texts, questions


def latency(mc: memcubed.Memcubed, questions: list[str], mode: str, *, cold: bool = True) -> dict[str, float]:
    """Search p50/p95 over ``questions``; ``cold`` empties the query-vector cache first, so that every query
    embeds (a pass over questions already asked measures the cache instead)."""
    if cold:
        QUERY_CACHE.clear()
    embed, index, total = [], [], []
    for q in questions:
        result = mc.search(q, namespace="bench", k=10, mode=mode)
        embed.append(result.embed_ms)
        index.append(result.index_ms)
        total.append(result.total_ms)
    return {"embed_ms_p50": round(percentile(embed, 50), 2), "embed_ms_p95": round(percentile(embed, 95), 2),
            "index_ms_p50": round(percentile(index, 50), 2), "index_ms_p95": round(percentile(index, 95), 2),
            "total_ms_p50": round(percentile(total, 50), 2), "total_ms_p95": round(percentile(total, 95), 2)}


def run(data: Path, sizes: tuple[int, ...] = SIZES, embedder_spec: str = "local") -> dict[str, Any]:
    """Measure embedding throughput, indexed-write throughput and latency at each size."""
    texts, questions = corpus(data)
    embedder = build_embedder(embedder_spec)  # the settings' query runtime, as a store opened by spec gets
    assert embedder is not None
    embedder.embed(texts[:8])  # warm up
    t0 = time.perf_counter()
    base = embedder.embed(texts)
    embed_rate = len(texts) / (time.perf_counter() - t0)
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"embedder": embedder.name, "embed_docs_per_s": round(embed_rate, 1),
                           "embedder_runtime": getattr(embedder, "runtime_in_use", "n/a"),
                           "query_runtime": getattr(embedder, "query_runtime_in_use", "n/a"), "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp, memcubed.open(Path(tmp) / "speed.db", embedder=embedder) as admin:
        admin.create_principal("bench")
        mc = admin.as_principal("bench")
        t0 = time.perf_counter()
        mc.add_many([{"text": t, "namespace": "bench"} for t in texts[:500]])
        out["add_with_embedding_cubes_per_s"] = round(500 / (time.perf_counter() - t0), 1)
        count, write_s = 500, 0.0
        for size in sizes:
            write_s += fill(mc, texts, base, rng, count, size)
            count = size
            admin.kernel.store.warm("bench")  # in-process indexes loaded, as in a server that has run a while
            out["sizes"][str(size)] = {
                "indexed_add_cubes_per_s": round((count - 500) / write_s, 1),
                "file_mb": file_mb(Path(tmp)),
                **{mode: latency(mc, questions, mode) for mode in ("hybrid", "lexical", "vector")},
                "hybrid_repeated_queries": latency(mc, questions, "hybrid", cold=False),
                **baselines(Path(tmp) / "speed.db", embedder, questions),
            }
    return out


def baselines(path: Path, embedder: Any, questions: list[str]) -> dict[str, Any]:
    """In the same run: a fresh process's first search (FTS5 ranks it while the lexical index loads in the
    background; the vector codes load in it), the lexical index's load, and lexical search ranked inside FTS5
    (``lexical_index=False``, the path before the in-process index) with its ratio to the index."""
    with memcubed.open(path, embedder=embedder) as fresh:
        t0 = time.perf_counter()
        fresh.as_principal("bench").search(questions[0], namespace="bench", k=10)  # FTS5 ranks; vectors load
        cold_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        fresh.kernel.store.warm("bench")
        load_s = time.perf_counter() - t0
        indexed = latency(fresh.as_principal("bench"), questions, "lexical")
    with memcubed.open(path, embedder=embedder, settings=memcubed.Settings(lexical_index=False)) as fts:
        inside = latency(fts.as_principal("bench"), questions, "lexical")
    return {"cold_first_hybrid_search_ms": round(cold_ms, 1), "lexical_index_load_s": round(load_s, 2),
            "lexical_ranked_in_fts5": inside,
            "lexical_fts5_over_index_p50": round(inside["index_ms_p50"] / indexed["index_ms_p50"], 2)}


def file_mb(folder: Path) -> float:
    """Megabytes of the store on disk: the database, its WAL and its blob folder."""
    return round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6, 1)


def fill(mc: memcubed.Memcubed, texts: list[str], base: np.ndarray, rng: np.random.Generator, start: int,
         size: int) -> float:
    """Add cubes ``start..size`` of the corpus in batches, with jittered precomputed vectors; return the seconds
    spent in ``add_many``."""
    write_s, count = 0.0, start
    while count < size:
        n = min(BATCH, size - count)
        idx = np.arange(count, count + n) % len(texts)
        vectors = base[idx] + rng.normal(0, 0.02, (n, base.shape[1])).astype(np.float32)
        items = [{"text": f"{texts[i]} [{count + j}]", "namespace": "bench"} for j, i in enumerate(idx)]
        t0 = time.perf_counter()
        mc.add_many(items, vectors=vectors)
        write_s += time.perf_counter() - t0
        count += n
    return write_s


def main(data: Path, embedder: str = "local") -> dict[str, Any]:
    """Run and write ``bench/results/speed.json`` (``speed_<embedder>.json`` for another embedder)."""
    result = run(data, embedder_spec=embedder)
    write_result("speed" if embedder == "local" else f"speed_{embedder.replace(':', '_').replace('/', '_')}", result)
    return result
