"""PostgreSQL lexical search at scale: latency at one corpus size, and read throughput with 1, 2 and 4 memcubed
processes on one database, as a ratio to one process.

``python -m bench.pg_scale [--data PATH] [--size N] [--seconds S] [--tag T]``. One lexical-only store (no
embedder: the bench measures the store, not MiniLM on a shared CPU) on a private PostgreSQL server (see
``bench.backends``) holds ``size`` LoCoMo turns with a distinguishing suffix, read by a non-admin principal so
the rights clause is in every query. Latency: ``bench.speed.latency`` over 200 LoCoMo questions, then the store's
lexical search (BM25 scored in SQL) against the in-process ranking before it, alternating per query. Throughput:
each process opens its own client (its own pool), waits at a common barrier and runs lexical searches for
``seconds``; reads/s = all searches / ``seconds``. Run under another memcubed on ``PYTHONPATH`` it measures that
one (the before/after of a change); the load average is in the result, the ratios are what compare.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

import memcubed
from bench.backends import _Postgres
from bench.common import percentile, write_result
from bench.speed import corpus, latency
from memcubed.backends.base import SearchScope
from memcubed.backends.postgres.lexsearch import python_ranked, sql_ranked

PROCESSES = (1, 2, 4)
BATCH = 1_000


def _fill(location: str, texts: list[str], size: int) -> float:
    """Seed the store; return the cubes added per second."""
    with memcubed.open(location, embedder="none") as admin:
        admin.create_principal("bench")
        mc = admin.as_principal("bench")
        started = time.perf_counter()
        for start in range(0, size, BATCH):
            mc.add_many([{"text": f"{texts[i % len(texts)]} [{i}]", "namespace": "bench"}
                         for i in range(start, min(size, start + BATCH))])
        rate = size / (time.perf_counter() - started)
    import psycopg

    with psycopg.connect(location, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # planner statistics, as autovacuum keeps them on a running server
    return rate


def _a_b(mc: memcubed.Memcubed, questions: list[str]) -> dict[str, Any]:
    """The store's lexical search (BM25 scored in SQL, ``lexsearch.sql_ranked``) against the in-process ranking
    before it (``lexsearch.python_ranked``: every matching row read into Python), alternating per query (the same
    load for both), and whether they rank alike (same ids in the same order, equal scores)."""
    kernel = mc.kernel
    scope = SearchScope(principal="bench", is_admin=False, namespace="bench")
    weight, limit = kernel.text.config.context_weight, kernel.text.config.candidates
    sql_ms, python_ms, differ, unequal = [], [], 0, 0
    for n, q in enumerate(questions):
        match = kernel.text.build_match(q)
        if not match:
            continue
        first, second = (sql_ranked, python_ranked) if n % 2 == 0 else (python_ranked, sql_ranked)
        t0 = time.perf_counter()
        a = first(kernel.store._all, match, scope, limit, context_weight=weight)
        t1 = time.perf_counter()
        b = second(kernel.store._all, match, scope, limit, context_weight=weight)
        t2 = time.perf_counter()
        (sql, sql_t), (python, python_t) = ((a, t1 - t0), (b, t2 - t1)) if first is sql_ranked else \
            ((b, t2 - t1), (a, t1 - t0))
        sql_ms.append(sql_t * 1000)
        python_ms.append(python_t * 1000)
        differ += [i for i, _ in sql] != [i for i, _ in python] or not np.allclose(
            [x for _, x in sql], [x for _, x in python], rtol=1e-9, atol=0)
        unequal += sql != python
    p50 = (percentile(sql_ms, 50), percentile(python_ms, 50))
    return {"queries": len(sql_ms), "limit": limit, "rankings_differ": int(differ), "not_bit_equal": int(unequal),
            "sql_scored_ms_p50": round(p50[0], 2), "sql_scored_ms_p95": round(percentile(sql_ms, 95), 2),
            "python_ranked_ms_p50": round(p50[1], 2), "python_ranked_ms_p95": round(percentile(python_ms, 95), 2),
            "python_over_sql_p50": round(p50[1] / p50[0], 2),
            "python_over_sql_p95": round(percentile(python_ms, 95) / percentile(sql_ms, 95), 2)}


def _reader(location: str, worker: int, questions: list[str], seconds: float, barrier: Any, results: Any) -> None:
    with memcubed.open(location, embedder="none", principal="bench") as mc:
        mc.search(questions[worker], namespace="bench", k=10, mode="lexical")  # connect and warm up
        barrier.wait()
        done, until = 0, time.perf_counter() + seconds
        while time.perf_counter() < until:
            mc.search(questions[(worker * 37 + done) % len(questions)], namespace="bench", k=10, mode="lexical")
            done += 1
    results.put(done)


def _throughput(location: str, processes: int, questions: list[str], seconds: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_reader, args=(location, w, questions, seconds, barrier, results))
             for w in range(processes)]
    for proc in procs:
        proc.start()
    done = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    return {"processes": processes, "searches": sum(done), "reads_per_s": round(sum(done) / seconds, 1),
            "load_avg_after": [round(x, 2) for x in os.getloadavg()]}


def run(data: Path, size: int, seconds: float, *, baseline_only: bool = False) -> dict[str, Any]:
    """Seed one database, time lexical search, then read with 1, 2 and 4 processes."""
    texts, questions = corpus(data)
    pg = _Postgres()
    try:
        location = pg.database()
        out: dict[str, Any] = {"size": size, "seconds_per_step": seconds, "memcubed": memcubed.__file__,
                               "add_cubes_per_s": round(_fill(location, texts, size), 1)}
        with memcubed.open(location, embedder="none", principal="bench") as mc:
            latency(mc, questions[:20], "lexical")  # warm the server's caches
            out["lexical"] = latency(mc, questions, "lexical")
            if not baseline_only:
                out["store_lexical_a_b"] = _a_b(mc, questions)
        out["load_avg_after_latency"] = [round(x, 2) for x in os.getloadavg()]
        out["throughput"] = [_throughput(location, n, questions, seconds) for n in PROCESSES]
    finally:
        pg.close()
    one = out["throughput"][0]["reads_per_s"]
    out["reads_ratio_to_one_process"] = {str(t["processes"]): round(t["reads_per_s"] / one, 2)
                                         for t in out["throughput"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo/locomo_dev.json"))
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--baseline-only", action="store_true", help="skip the store-level A/B (older memcubed)")
    parser.add_argument("--tag", default="", help="a suffix of the results file (pg_scale_<tag>.json)")
    args = parser.parse_args()
    # Under an older memcubed (no maintained statistics) only the end-to-end figures are measured.
    result = run(args.data, args.size, args.seconds, baseline_only=args.baseline_only)
    write_result("pg_scale" + (f"_{args.tag}" if args.tag else ""), result)
    print({k: result[k] for k in ("size", "add_cubes_per_s", "lexical", "reads_ratio_to_one_process")})


if __name__ == "__main__":
    main()
