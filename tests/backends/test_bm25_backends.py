"""SQLite and PostgreSQL rank with the same BM25 and namespace statistics: one small corpus, one ranking."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import memcubed
from memcubed.testing.backends import PgCluster

# Words both tokenizers read alike (no stopwords: PostgreSQL drops them from a row's length, FTS5 counts them).
_WORDS = ("garden compost boat sailing bay dawn pottery class thursday lake sunrise marathon violin camping "
          "mountains bread oven parrot tractor concert festival music friends family summer painting").split()
_QUERIES = ("garden compost", "sailing boat dawn", "pottery class thursday", "marathon", "violin concert lake",
            "camping mountains sunrise family", "bread oven", "parrot tractor festival", "zyzzyva")


def _texts(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 12))) for _ in range(n)]


def _rankings(mc: memcubed.Memcubed, namespace: str) -> dict[str, list[tuple[str, float]]]:
    return {q: [(h.cube.text or "", h.signals["lexical"].score)
                for h in mc.search(q, namespace=namespace, mode="lexical", k=20).hits] for q in _QUERIES}


@pytest.fixture
def pg_dsn(pg_cluster: PgCluster) -> object:
    dsn = pg_cluster.create()
    yield dsn
    pg_cluster.drop(dsn)


def test_sqlite_and_postgres_rank_a_small_corpus_identically(tmp_path: Path, pg_dsn: str) -> None:
    rng = random.Random(11)
    # Distinct texts, so that a ranking of texts is a ranking of cubes; two namespaces of different sizes.
    texts = list(dict.fromkeys(_texts(rng, 160)))
    items = [{"text": t, "namespace": "small" if i % 4 == 0 else "big"} for i, t in enumerate(texts)]
    results = []
    for location in (str(tmp_path / "m.db"), pg_dsn):
        with memcubed.open(location, embedder="none") as mc:
            mc.add_many(items)
            results.append({ns: _rankings(mc, ns) for ns in ("small", "big")})
    sqlite, postgres = results
    for namespace in ("small", "big"):
        for query in _QUERIES:
            got, want = postgres[namespace][query], sqlite[namespace][query]
            assert [t for t, _ in got] == [t for t, _ in want], (namespace, query)
            assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-9), (namespace, query)
    assert sqlite["big"]["garden compost"] and not sqlite["big"]["zyzzyva"]
