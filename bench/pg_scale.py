"""PostgreSQL lexical search at scale: latency at one corpus size, and read throughput with 1, 2 and 4 memcubed
processes on one database, as a ratio to one process.

``python -m bench.pg_scale [--data PATH] [--size N] [--seconds S] [--tag T]``. One lexical-only store (no
embedder: the bench measures the store, not MiniLM on a shared CPU) on a private PostgreSQL server (see
``bench.backends``) holds ``size`` LoCoMo turns with a distinguishing suffix, read by a non-admin principal so
the rights clause is in every query. Latency: ``bench.speed.latency`` over 200 LoCoMo questions, then the store's
lexical search against the query path before the maintained statistics, alternating per query. Throughput:
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
from memcubed.backends._common import scope_clause
from memcubed.backends.base import SearchScope
from memcubed.backends.bm25 import NamespaceStats, rank
from memcubed.backends.postgres.lexsearch import postings_of as _postings
from memcubed.backends.postgres.lexsearch import tsqueries as _tsqueries

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


def _summed(store: Any, match: str, scope: SearchScope, limit: int, context_weight: float
            ) -> list[tuple[str, float]]:
    """The lexical search before the maintained statistics (lexns): the namespace's totals summed and every
    row of it holding a query lexeme read, on each query; the baseline of the same store and queries."""
    matched, match_params, ranked, rank_params = _tsqueries(match)
    where, params = scope_clause(scope)
    lexemes = [x for r in store._all(
        "SELECT array(SELECT u.lexeme FROM unnest(to_tsvector('english', t.term)) AS u ORDER BY u.positions[1])"
        " AS lexemes FROM unnest(?::text[]) WITH ORDINALITY AS t(term, ord) ORDER BY t.ord", (rank_params,))
        for x in r["lexemes"]]
    if not lexemes:
        return []
    rows = store._all(
        f"SELECT f.seq, c.id, f.len, u.lexeme, array_to_string(u.weights, '') AS w,"
        f" (f.tsv @@ ({matched}) AND {where}) AS ok FROM cube_fts f JOIN cubes c ON c.seq = f.seq"
        f" CROSS JOIN LATERAL unnest(f.tsv) AS u WHERE c.namespace = ? AND f.tsv @@ {ranked}"
        " AND u.lexeme = ANY(?::text[])",
        [*match_params, *params, scope.namespace, *rank_params, list(set(lexemes))])
    ids = {int(r["seq"]): r["id"] for r in rows if r["ok"]}
    candidates = np.asarray(sorted(ids), np.int64)
    length_of = {int(r["seq"]): float(r["len"]) for r in rows}
    stats = store._one("SELECT count(*) AS n, coalesce(sum(f.len), 0) AS t FROM cubes c JOIN cube_fts f"
                       " ON f.seq = c.seq WHERE c.namespace = ? AND f.len > 0", (scope.namespace,))
    postings = _postings(rows)
    best = rank(candidates, np.asarray([length_of[int(s)] for s in candidates], np.float64),
                [postings[lexeme] for lexeme in lexemes], stats=NamespaceStats(int(stats["n"]), float(stats["t"])),
                context_weight=context_weight, limit=limit)
    return [(ids[seq], score) for seq, score in best]


def _a_b(mc: memcubed.Memcubed, questions: list[str]) -> dict[str, Any]:
    """The store's lexical search against :func:`_summed`, alternating per query (the same load for both), and
    whether they rank alike."""
    kernel = mc.kernel
    scope = SearchScope(principal="bench", is_admin=False, namespace="bench")
    weight, limit = kernel.text.config.context_weight, kernel.text.config.candidates
    kept_ms, summed_ms, differ = [], [], 0
    for q in questions:
        match = kernel.text.build_match(q)
        if not match:
            continue
        t0 = time.perf_counter()
        kept = kernel.store.lexical_search(match, scope, limit, context_weight=weight)
        t1 = time.perf_counter()
        summed = _summed(kernel.store, match, scope, limit, weight)
        t2 = time.perf_counter()
        kept_ms.append((t1 - t0) * 1000)
        summed_ms.append((t2 - t1) * 1000)
        same = [i for i, _ in kept] == [i for i, _ in summed] and np.allclose(
            [x for _, x in kept], [x for _, x in summed], rtol=1e-9, atol=0)
        differ += not same
    p50 = (percentile(kept_ms, 50), percentile(summed_ms, 50))
    return {"queries": len(kept_ms), "rankings_differ": differ,
            "kept_stats_ms_p50": round(p50[0], 2), "kept_stats_ms_p95": round(percentile(kept_ms, 95), 2),
            "summed_stats_ms_p50": round(p50[1], 2), "summed_stats_ms_p95": round(percentile(summed_ms, 95), 2),
            "summed_over_kept_p50": round(p50[1] / p50[0], 2)}


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
