"""Reads and writes at once on PostgreSQL: 4 reader threads (get + lexical search) and 1 writer thread
(add + update) on one store for a fixed time, with access stats written inline in every read (the old
behaviour, ``access_stats="inline"``: each read takes the store-wide write lock) and buffered (reads
write nothing; a background writer logs and folds their access events), in one run.

The five workers run twice: as threads of one process (one kernel, one background writer; the GIL is
shared, so a thread holding the write lock waits for the interpreter too) and as five processes (a
kernel and a background writer each, as several servers sharing one database would). Each mode gets
a fresh database seeded with the same LoCoMo turns, read by a non-admin principal (so
every query carries the rights clause), lexical-only (no embedder: the bench measures the store, not
MiniLM on a shared CPU). Afterwards the stats are folded and checked: the access counts in the store
add up to the accesses the readers made, in both modes.

``python -m bench --only readwrite`` (``MEMCUBED_BENCH_RW_SECONDS`` sets the duration per mode).
"""

from __future__ import annotations

import multiprocessing
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

SECONDS = float(os.environ.get("MEMCUBED_BENCH_RW_SECONDS", "12"))
READERS = 4
SEED = 2_000
MODES = ("inline", "buffered")
VARIANTS = ("threads", "processes")


def _summary(latencies: list[float], seconds: float) -> dict[str, float]:
    ms = [x * 1000 for x in latencies]
    return {"ops": len(ms), "ops_per_s": round(len(ms) / seconds, 1), "p50_ms": round(percentile(ms, 50), 2),
            "p99_ms": round(percentile(ms, 99), 2)}


def _settings(mode: str) -> Settings:
    return Settings(access_stats=mode, pg_pool_size=READERS + 4)


def _loop(mc: memcubed.Memcubed, role: str, n: int, ids: list[str], texts: list[str], questions: list[str]
          ) -> tuple[dict[str, list[float]], int]:
    """One worker for ``SECONDS``: a reader alternates get and search, the writer add and update; return the
    latencies by operation and the accesses made (a get is one, a search one per hit)."""
    rng = random.Random(n)
    lat: dict[str, list[float]] = {"get": [], "search": [], "write": []}
    accessed = 0
    until = time.perf_counter() + SECONDS
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        if role == "reader":
            mc.get(rng.choice(ids))
            lat["get"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            hits = mc.search(rng.choice(questions), namespace="bench", k=10, mode="lexical").hits
            lat["search"].append(time.perf_counter() - t0)
            accessed += 1 + len(hits)
        else:
            if len(lat["write"]) % 2 == 0:
                mc.add(f"{rng.choice(texts)} [written #{len(lat['write'])}]", namespace="bench")
            else:
                mc.update(rng.choice(ids), importance=rng.random())
            lat["write"].append(time.perf_counter() - t0)
    return lat, accessed


def _process(dsn: str, mode: str, role: str, n: int, ids: list[str], texts: list[str], questions: list[str],
             barrier: Any, results: Any) -> None:
    with memcubed.open(dsn, embedder="none", principal="bench", settings=_settings(mode)) as mc:
        mc.history(ids[n])  # connect and warm up without counting an access
        barrier.wait()
        out = _loop(mc, role, n, ids, texts, questions)
    results.put(out)  # after close: its buffered accesses are folded


def _mode(dsn: str, mode: str, variant: str, texts: list[str], questions: list[str]) -> dict[str, Any]:
    """One mode on a fresh database, its workers as threads of this process or as processes."""
    roles = ["reader"] * READERS + ["writer"]
    with memcubed.open(dsn, embedder="none", settings=_settings(mode)) as admin:
        admin.create_principal("bench")
        mc = admin.as_principal("bench")
        ids = [c.id for c in mc.add_many([{"text": f"{texts[i % len(texts)]} [{i}]", "namespace": "bench"}
                                          for i in range(SEED)])]
        outs: list[tuple[dict[str, list[float]], int]] = []
        if variant == "threads":
            barrier = threading.Barrier(len(roles))

            def work(role: str, n: int) -> None:
                barrier.wait()
                outs.append(_loop(mc, role, n, ids, texts, questions))

            threads = [threading.Thread(target=work, args=(role, n)) for n, role in enumerate(roles)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            ctx = multiprocessing.get_context("spawn")
            pbarrier, results = ctx.Barrier(len(roles)), ctx.Queue()
            procs = [ctx.Process(target=_process, args=(dsn, mode, role, n, ids, texts, questions, pbarrier, results))
                     for n, role in enumerate(roles)]
            for proc in procs:
                proc.start()
            outs = [results.get(timeout=300) for _ in procs]
            for proc in procs:
                proc.join(timeout=60)
        admin.kernel.flush_events()
        store = admin.kernel.store
        counted = sum(c.stats.access_count for c in store.load_cubes(list(store.iter_cube_ids())).values())
    gets = [x for lat, _ in outs for x in lat["get"]]
    searches = [x for lat, _ in outs for x in lat["search"]]
    return {
        "reads": _summary(gets + searches, SECONDS), "gets": _summary(gets, SECONDS),
        "searches": _summary(searches, SECONDS), "writes": _summary([x for lat, _ in outs for x in lat["write"]],
                                                                     SECONDS),
        "accesses_made": sum(n for _, n in outs), "accesses_counted": counted,
    }


def run(data: Path) -> dict[str, Any]:
    """Both modes, workers as threads then as processes, each on a fresh database of a private PostgreSQL
    server; return the results and the ratios."""
    texts, questions = corpus(data)
    pg = _Postgres()
    out: dict[str, Any] = {"readers": READERS, "writers": 1, "seconds_per_mode": SECONDS, "seed_cubes": SEED}
    try:
        for variant in VARIANTS:
            out[variant] = {mode: _mode(pg.database(), mode, variant, texts, questions) for mode in MODES}
    finally:
        pg.close()
    for variant in VARIANTS:
        before, after = out[variant]["inline"], out[variant]["buffered"]
        out[variant]["ratios_buffered_over_inline"] = {
            f"{kind}_{metric}": round(after[kind][metric] / before[kind][metric], 2)
            for kind in ("reads", "gets", "searches", "writes") for metric in ("ops_per_s", "p50_ms", "p99_ms")
        }
        for mode in MODES:
            result = out[variant][mode]
            assert result["accesses_counted"] == result["accesses_made"], (variant, mode, result)
    return out


def summary(result: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    lines = [f"{READERS} readers + 1 writer, {SECONDS:g} s per mode, PostgreSQL"]
    for variant in VARIANTS:
        for mode in MODES:
            r, w = result[variant][mode]["reads"], result[variant][mode]["writes"]
            lines.append(f"{variant:>9} {mode:>8}: reads {r['ops_per_s']:>7}/s p50 {r['p50_ms']} ms"
                         f" p99 {r['p99_ms']} ms | writes {w['ops_per_s']:>6}/s p50 {w['p50_ms']} ms"
                         f" p99 {w['p99_ms']} ms")
        ratios = result[variant]["ratios_buffered_over_inline"]
        lines.append(f"{variant:>9} buffered/inline: reads/s x{ratios['reads_ops_per_s']}, read p99 "
                     f"x{ratios['reads_p99_ms']}, writes/s x{ratios['writes_ops_per_s']}, "
                     f"write p99 x{ratios['writes_p99_ms']}")
    return "\n".join(lines)


def main(data: Path) -> dict[str, Any]:
    """Run and write ``bench/results/readwrite.json``."""
    result = run(data)
    write_result("readwrite", result)
    return result
