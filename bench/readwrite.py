"""Reads and writes at once on PostgreSQL: 4 reader threads (get + lexical search) and 1 writer thread
(add + update) on one store for a fixed time, with access stats written inline in every read (the old
behaviour, ``access_stats="inline"``: each read takes the store-wide write lock) and buffered (reads
write nothing; a background writer logs and folds their access events), in one run.

Each mode gets a fresh database seeded with the same LoCoMo turns, read by a non-admin principal (so
every query carries the rights clause), lexical-only (no embedder: the bench measures the store, not
MiniLM on a shared CPU). Afterwards the stats are folded and checked: the access counts in the store
add up to the accesses the readers made, in both modes.

``python -m bench --only readwrite`` (``MEMCUBED_BENCH_RW_SECONDS`` sets the duration per mode).
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import memcubed
from bench.backends import _Postgres
from bench.common import percentile, write_result
from bench.speed import corpus
from memcubed.settings import Settings

SECONDS = float(os.environ.get("MEMCUBED_BENCH_RW_SECONDS", "15"))
READERS = 4
SEED = 2_000
MODES = ("inline", "buffered")


def _summary(latencies: list[float], seconds: float) -> dict[str, float]:
    ms = [x * 1000 for x in latencies]
    return {"ops": len(ms), "ops_per_s": round(len(ms) / seconds, 1), "p50_ms": round(percentile(ms, 50), 2),
            "p99_ms": round(percentile(ms, 99), 2)}


def _mode(dsn: str, mode: str, texts: list[str], questions: list[str]) -> dict[str, Any]:
    settings = Settings(access_stats=mode, pg_pool_size=READERS + 4)
    with memcubed.open(dsn, embedder="none", settings=settings) as admin:
        admin.create_principal("bench")
        mc = admin.as_principal("bench")
        ids = [c.id for c in mc.add_many([{"text": f"{texts[i % len(texts)]} [{i}]", "namespace": "bench"}
                                          for i in range(SEED)])]
        gets: list[list[float]] = [[] for _ in range(READERS)]
        searches: list[list[float]] = [[] for _ in range(READERS)]
        accessed = [0] * READERS
        writes: list[float] = []
        start = threading.Barrier(READERS + 2)
        until = [0.0]

        def reader(n: int) -> None:
            rng = random.Random(n)
            start.wait()
            while time.perf_counter() < until[0]:
                t0 = time.perf_counter()
                mc.get(rng.choice(ids))
                gets[n].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                hits = mc.search(rng.choice(questions), namespace="bench", k=10, mode="lexical").hits
                searches[n].append(time.perf_counter() - t0)
                accessed[n] += 1 + len(hits)

        def writer() -> None:
            rng = random.Random(99)
            start.wait()
            while time.perf_counter() < until[0]:
                t0 = time.perf_counter()
                if len(writes) % 2 == 0:
                    mc.add(f"{rng.choice(texts)} [written #{len(writes)}]", namespace="bench")
                else:
                    mc.update(rng.choice(ids), importance=rng.random())
                writes.append(time.perf_counter() - t0)

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
        threads.append(threading.Thread(target=writer))
        for t in threads:
            t.start()
        until[0] = time.perf_counter() + SECONDS
        start.wait()
        for t in threads:
            t.join()
        admin.kernel.flush_events()
        store = admin.kernel.store
        counted = sum(c.stats.access_count for c in store.load_cubes(list(store.iter_cube_ids())).values())
        reads = [x for n in range(READERS) for x in gets[n] + searches[n]]
        return {
            "reads": _summary(reads, SECONDS),
            "gets": _summary([x for g in gets for x in g], SECONDS),
            "searches": _summary([x for s in searches for x in s], SECONDS),
            "writes": _summary(writes, SECONDS),
            "accesses_made": sum(accessed), "accesses_counted": counted,
        }


def run(data: Path) -> dict[str, Any]:
    """Both modes on fresh databases of a private PostgreSQL server; return the results and the ratios."""
    texts, questions = corpus(data)
    pg = _Postgres()
    out: dict[str, Any] = {"readers": READERS, "writers": 1, "seconds_per_mode": SECONDS, "seed_cubes": SEED,
                           "modes": {}}
    try:
        for mode in MODES:
            out["modes"][mode] = _mode(pg.database(), mode, texts, questions)
    finally:
        pg.close()
    before, after = out["modes"]["inline"], out["modes"]["buffered"]
    out["ratios_buffered_over_inline"] = {
        f"{kind}_{metric}": round(after[kind][metric] / before[kind][metric], 2)
        for kind in ("reads", "gets", "searches", "writes") for metric in ("ops_per_s", "p50_ms", "p99_ms")
    }
    for mode in MODES:
        result = out["modes"][mode]
        assert result["accesses_counted"] == result["accesses_made"], (mode, result)
    return out


def summary(result: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    lines = [f"{READERS} readers + 1 writer, {SECONDS:g} s per mode, PostgreSQL"]
    for mode in MODES:
        r, w = result["modes"][mode]["reads"], result["modes"][mode]["writes"]
        lines.append(f"{mode:>8}: reads {r['ops_per_s']:>8}/s p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms | "
                     f"writes {w['ops_per_s']:>6}/s p50 {w['p50_ms']} ms p99 {w['p99_ms']} ms")
    ratios = result["ratios_buffered_over_inline"]
    lines.append(f"buffered/inline: reads/s x{ratios['reads_ops_per_s']}, read p99 x{ratios['reads_p99_ms']}, "
                 f"writes/s x{ratios['writes_ops_per_s']}, write p99 x{ratios['writes_p99_ms']}")
    return "\n".join(lines)


def main(data: Path) -> dict[str, Any]:
    """Run and write ``bench/results/readwrite.json``."""
    result = run(data)
    write_result("readwrite", result)
    return result
