"""The write cost of PostgreSQL's BM25 statistics trigger (``backends/postgres/lexstats.py``): adds with the trigger
on and off, alternating batch by batch on one store, as a ratio measured in the same run.

``python -m bench.pg_trigger_cost [--data PATH] [--batches N] [--batch B]``. One lexical-only store (no embedder)
on a private PostgreSQL server (``bench.backends``) receives ``batches`` batches of ``batch`` LoCoMo turns through
``add_many``; batch i runs with ``cube_fts_lex_stats`` disabled when i is odd, so both arms see the same load and
a namespace of about the same size. Then blocks of ``batch`` full-text rows get a new context in one statement
each, trigger on and off alternating (the trigger's cost without the rest of a write). The ratios of the arms'
medians are the figures (wall time under a shared machine's load means little alone). The disabled batches
leave the statistics wrong: the store is thrown away.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import psycopg

import memcubed
from bench.backends import _Postgres
from bench.common import percentile, write_result
from bench.speed import corpus


def run(data: Path, batches: int, batch: int) -> dict[str, Any]:
    """Alternate trigger-on and trigger-off batches of adds; per-cube milliseconds of each arm and their ratio."""
    texts, _ = corpus(data)
    pg = _Postgres()
    try:
        location = pg.database()
        arms: dict[str, list[float]] = {"on": [], "off": []}
        with memcubed.open(location, embedder="none") as mc, psycopg.connect(location, autocommit=True) as conn:
            mc.add_many([{"text": t, "namespace": "bench"} for t in texts[:batch]])  # warm up
            for i in range(batches):
                arm = "off" if i % 2 else "on"
                conn.execute(f"ALTER TABLE cube_fts {'DISABLE' if arm == 'off' else 'ENABLE'} TRIGGER"
                             " cube_fts_lex_stats")
                start = (i + 1) * batch
                rows = [{"text": f"{texts[(start + j) % len(texts)]} [{start + j}]", "namespace": "bench"}
                        for j in range(batch)]
                t0 = time.perf_counter()
                mc.add_many(rows)
                arms[arm].append((time.perf_counter() - t0) * 1000 / batch)
                print(f"batch {i + 1}/{batches} ({arm}): {arms[arm][-1]:.2f} ms/cube", flush=True)
            fts = _fts_updates(conn, texts, batches, batch)
            conn.execute("ALTER TABLE cube_fts ENABLE TRIGGER cube_fts_lex_stats")
    finally:
        pg.close()
    p50 = {arm: percentile(ms, 50) for arm, ms in arms.items()}
    return {"batches": batches, "batch": batch, "ms_per_cube": {arm: [round(x, 3) for x in ms] for arm, ms in
                                                                  arms.items()},
            "on_ms_per_cube_p50": round(p50["on"], 3), "off_ms_per_cube_p50": round(p50["off"], 3),
            "on_over_off_p50": round(p50["on"] / p50["off"], 3), "fts_context_updates": fts,
            "load_avg_after": [round(x, 2) for x in os.getloadavg()]}


def _fts_updates(conn: Any, texts: list[str], batches: int, batch: int) -> dict[str, Any]:
    """The trigger's share of a full-text write alone: blocks of ``batch`` rows get a new context in one
    ``UPDATE cube_fts`` each (what ``set_context`` does per cube), trigger on and off alternating."""
    seqs = [r[0] for r in conn.execute("SELECT seq FROM cube_fts ORDER BY seq").fetchall()]
    arms: dict[str, list[float]] = {"on": [], "off": []}
    for i in range(batches):
        arm = "off" if i % 2 else "on"
        conn.execute(f"ALTER TABLE cube_fts {'DISABLE' if arm == 'off' else 'ENABLE'} TRIGGER cube_fts_lex_stats")
        block = seqs[(i * batch) % len(seqs):][:batch]
        t0 = time.perf_counter()
        conn.execute("UPDATE cube_fts SET context = %s WHERE seq = ANY(%s)", (texts[i % len(texts)], block))
        arms[arm].append((time.perf_counter() - t0) * 1000 / len(block))
    p50 = {arm: percentile(ms, 50) for arm, ms in arms.items()}
    return {"on_ms_per_row_p50": round(p50["on"], 3), "off_ms_per_row_p50": round(p50["off"], 3),
            "on_over_off_p50": round(p50["on"] / p50["off"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo/locomo_dev.json"))
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    result = run(args.data, args.batches, args.batch)
    write_result("pg_trigger_cost", result)
    print({k: v for k, v in result.items() if k != "ms_per_cube"})


if __name__ == "__main__":
    main()
