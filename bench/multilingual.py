"""A tiny multilingual retrieval figure: the conformance suite's Chinese/Japanese/Korean/English/mixed store
(``memcubed.testing.conformance.search_cjk``) on both backends, recall@1/@3 and MRR per mode.

``python -m bench.multilingual``: 15 memories, 15 queries; lexical needs no model, hybrid and vector use the
packaged MiniLM (an English model: its CJK vectors are weak, which the figure shows).
"""

from __future__ import annotations

from typing import Any

import memcubed
from bench.common import write_result
from bench.embed_cache import bench_embedder
from bench.stores import BACKENDS, store_locations
from memcubed.testing.conformance.search_cjk import MULTILINGUAL_MEMORIES, MULTILINGUAL_QUERIES

MODES = ("lexical", "hybrid", "vector")


def _scores(mc: memcubed.Memcubed, ids: dict[str, str], mode: str) -> dict[str, Any]:
    ranks = []
    for query, want in MULTILINGUAL_QUERIES:
        found = [h.cube.id for h in mc.search(query, mode=mode, k=10).hits]
        ranks.append(found.index(ids[want]) + 1 if ids[want] in found else None)
    n = len(ranks)
    return {"r@1": round(100 * sum(r == 1 for r in ranks) / n, 1),
            "r@3": round(100 * sum(r is not None and r <= 3 for r in ranks) / n, 1),
            "mrr": round(sum(1 / r for r in ranks if r) / n, 3),
            "not_first": [q for (q, _), r in zip(MULTILINGUAL_QUERIES, ranks, strict=True) if r != 1]}


def run(embedder: str = "local") -> dict[str, Any]:
    """Both backends, every mode."""
    model = bench_embedder(embedder)
    out: dict[str, Any] = {"memories": len(MULTILINGUAL_MEMORIES), "queries": len(MULTILINGUAL_QUERIES),
                           "embedder": embedder, "recall": {}}
    for backend in BACKENDS:
        with store_locations(backend) as new, memcubed.open(new(), embedder=model) as mc:
            ids = {key: mc.add(text).id for key, text in MULTILINGUAL_MEMORIES.items()}
            out["recall"][backend] = {mode: _scores(mc, ids, mode) for mode in MODES}
    return out


if __name__ == "__main__":
    result = run()
    write_result("multilingual", result)
    print(result["recall"])
