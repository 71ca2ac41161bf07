"""In-process A/B of a search's first stage (issue 16, NOTES lat4): the query embedding first and then the lexical
query beside the vector one (the order before session 11), against this checkout's ``ReadOps._first_stage``
(the lexical query submitted first, running while the query embeds).

Both arms run in one process on one store, question by question in alternating order, so they share the
process, its threads and its caches: ``bench.speed_latency_ab`` runs each arm in its own worker, and two
workers of the same code differed by up to 17 % in total p50 at load 5–9 here, more than this change.
Per arm: p50/p95 of ``_find`` (the search without counting the access), the median over questions of each
question's fastest of ``--reps`` runs (closest to a quiet machine), and CPU; every search's hits and scores
must be equal in both arms.

``python -m bench.first_stage_ab --store DIR/100000`` (a store of ``bench.speed_latency_ab build``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

from bench.speed import corpus
from bench.speed_latency_ab import DB


def _embed_first(self: Any, req: Any, scope: Any, actor: Any, *, strip: bool = True) -> Any:
    """The first stage as it was: embed, then the lexical query in the searcher thread beside the vector query
    (the hybrid, overlapped, no-names path only, which is all the speed corpus takes)."""
    from memcubed.backends.embedders.querycache import query_vector

    cfg = self.text.config
    match = self._match(req.query, req.namespace)
    t0 = time.perf_counter()
    vector = query_vector(self.embedder, req.query)
    embed_ms = (time.perf_counter() - t0) * 1000
    pending = self._searcher().submit(self.store.lexical_search, match, scope, max(req.k, cfg.candidates),
                                      context_weight=cfg.context_weight)
    dense = self.store.vector_search(vector, scope, max(req.k, cfg.vector_candidates))
    return pending.result(), dense, embed_ms, []


def run(store: Path, queries: int, reps: int) -> dict[str, Any]:
    import memcubed
    from memcubed.backends.embedders import make_embedder
    from memcubed.backends.embedders.querycache import QUERY_CACHE
    from memcubed.schemas.ops import SearchRequest

    _, questions = corpus(Path(os.environ.get("LOCOMO", "/work/shared/data/locomo/locomo_dev.json")))
    with tempfile.TemporaryDirectory(dir=store.parent) as tmp:
        shutil.copytree(store, Path(tmp) / "s")
        with memcubed.open(Path(tmp) / "s" / DB, embedder=make_embedder("local", query_runtime="int8")) as client:
            kernel = client.kernel
            kernel.store.warm("bench")
            actor = kernel._actor("bench")
            arms = {"embed_first": types.MethodType(_embed_first, kernel), "lexical_first": kernel._first_stage}
            wall: dict[str, list[float]] = {a: [] for a in arms}
            cpu: dict[str, list[float]] = {a: [] for a in arms}
            fastest: dict[str, list[float]] = {a: [] for a in arms}
            kernel._find(SearchRequest(query="warm up", namespace="bench", k=10), actor)
            for i, question in enumerate(questions[:queries]):
                req = SearchRequest(query=question, namespace="bench", k=10)
                best = dict.fromkeys(arms, float("inf"))
                for rep in range(reps):
                    hits = {}
                    for name in (list(arms) if (i + rep) % 2 == 0 else list(reversed(arms))):
                        kernel._first_stage = arms[name]  # type: ignore[method-assign]
                        QUERY_CACHE.clear()
                        c0, t0 = time.process_time(), time.perf_counter()
                        found = kernel._find(req, actor)[0]
                        ms = (time.perf_counter() - t0) * 1000
                        wall[name].append(ms)
                        cpu[name].append((time.process_time() - c0) * 1000)
                        best[name] = min(best[name], ms)
                        hits[name] = [(h.cube.id, h.score) for h in found]
                    assert len({repr(h) for h in hits.values()}) == 1, question  # same hits, same scores
                for name in arms:
                    fastest[name].append(best[name])
    out: dict[str, Any] = {name: {"p50": round(float(np.median(wall[name])), 2),
                                  "p95": round(float(np.percentile(wall[name], 95)), 2),
                                  "median_of_fastest": round(float(np.median(fastest[name])), 2),
                                  "cpu_p50": round(float(np.median(cpu[name])), 2)} for name in arms}
    out["lexical_first_over_embed_first"] = {
        key: round(out["lexical_first"][key] / out["embed_first"][key], 3) for key in out["embed_first"]}
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    out["searches_per_arm"] = queries * reps
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=150)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    print(run(args.store, args.queries, args.reps))


if __name__ == "__main__":
    main()
