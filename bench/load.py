"""A bounded load test of a real ``memcubed serve`` on loopback: concurrent clients, a mix of add/search/get.

Each client is an asyncio task with its own principal's API key (five principals, so every search
carries the rights clause of a non-admin), looping for ``duration`` seconds: 20% add, 40% search (hybrid),
40% get of a cube its principal added. Afterwards every acknowledged add is read back: a cube that is
missing or whose text differs is a lost write. Texts and queries are LoCoMo turns and questions.

``python -m bench --only load`` (or ``python -m bench.load --clients 50 --duration 60``).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

from bench.common import load_cli, percentile, write_result
from memcubed.datasets.locomo import load_locomo
from memcubed.testing.server import running_server

PRINCIPALS = 5
SEED_PER_PRINCIPAL = 200
MIX = (("add", 0.2), ("search", 0.4), ("get", 0.4))


class Stats:
    """Latencies per operation, error counts by kind, and every acknowledged add (to read back)."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.added: dict[str, tuple[str, str]] = {}  # cube id -> (principal key, text)


def corpus(data: Path) -> tuple[list[str], list[str]]:
    """LoCoMo turns (memory texts) and questions (queries)."""
    conversations = load_locomo(data)
    texts = [t.document for c in conversations for t in c.turns]
    questions = [q.question for c in conversations for q in c.questions]
    return texts, questions


async def _client(n: int, url: str, keys: list[str], owned: dict[str, list[str]], texts: list[str],
                  questions: list[str], until: float, stats: Stats) -> None:
    rng = random.Random(n)
    key = keys[n % len(keys)]
    ops, weights = zip(*MIX, strict=True)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        while time.perf_counter() < until:
            op = rng.choices(ops, weights)[0]
            started = time.perf_counter()
            try:
                if op == "add":
                    text = f"{rng.choice(texts)} [client {n} #{rng.getrandbits(32):08x}]"
                    response = await http.post("/cubes", json={"text": text, "namespace": "load"})
                elif op == "search":
                    response = await http.post("/search", json={"query": rng.choice(questions), "namespace": "load",
                                                                "k": 10})
                else:
                    response = await http.get(f"/cubes/{rng.choice(owned[key])}")
            except httpx.HTTPError as exc:
                stats.errors[f"{op}:{type(exc).__name__}"] += 1
                continue
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code >= 400:
                stats.errors[f"{op}:{response.status_code}"] += 1
                continue
            stats.latency[op].append(elapsed)
            if op == "add":
                cube = response.json()
                stats.added[cube["id"]] = (key, text)
                owned[key].append(cube["id"])


async def read_back(url: str, added: dict[str, tuple[str, str]]) -> dict[str, int]:
    """Read every acknowledged write back; count the missing and the changed."""
    missing = changed = 0
    gate = asyncio.Semaphore(20)
    clients = {key: httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
               for key, _ in added.values()}

    async def check(cube_id: str, key: str, text: str) -> None:
        nonlocal missing, changed
        async with gate:
            response = await clients[key].get(f"/cubes/{cube_id}")
        if response.status_code != 200:
            missing += 1
        elif response.json()["text"] != text:
            changed += 1

    try:
        await asyncio.gather(*(check(cid, key, text) for cid, (key, text) in added.items()))
    finally:
        for client in clients.values():
            await client.aclose()
    return {"checked": len(added), "missing": missing, "changed": changed}


def setup(url: str, admin_key: str, texts: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Create the principals and their keys; seed each with memories to search and get."""
    keys: list[str] = []
    owned: dict[str, list[str]] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=600) as admin:
        for p in range(PRINCIPALS):
            name = f"load-{p}"
            admin.post("/principals", json={"name": name}).raise_for_status()
            key = admin.post(f"/principals/{name}/keys", json={"label": "bench"}).json()["key"]
            chunk = texts[p * SEED_PER_PRINCIPAL:(p + 1) * SEED_PER_PRINCIPAL]
            seeded = httpx.post(f"{url}/cubes/batch", headers={"Authorization": f"Bearer {key}"}, timeout=600,
                                json=[{"text": t, "namespace": "load"} for t in chunk])
            seeded.raise_for_status()
            keys.append(key)
            owned[key] = [c["id"] for c in seeded.json()]
    return keys, owned


def run(data: Path, *, clients: int = 50, duration: float = 60.0, embedder: str = "local") -> dict[str, Any]:
    """Start a server on a fresh store, drive it, read every write back, return the figures."""
    texts, questions = corpus(data)
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp) / "load.db", embedder=embedder,
                                                              args=["--workers", "0"]) as server:
        assert server.admin_key is not None
        keys, owned = setup(server.url, server.admin_key, texts)
        stats = Stats()

        async def drive() -> float:
            started = time.perf_counter()
            until = started + duration
            await asyncio.gather(*(_client(n, server.url, keys, owned, texts, questions, until, stats)
                                   for n in range(clients)))
            return time.perf_counter() - started

        elapsed = asyncio.run(drive())
        checked = asyncio.run(read_back(server.url, stats.added))
    per_op = {
        op: {"count": len(values), "per_s": round(len(values) / elapsed, 1),
             "p50_ms": round(percentile(values, 50), 1), "p95_ms": round(percentile(values, 95), 1),
             "p99_ms": round(percentile(values, 99), 1)}
        for op, values in sorted(stats.latency.items())
    }
    total = sum(len(v) for v in stats.latency.values())
    return {
        "config": {"clients": clients, "duration_s": duration, "principals": PRINCIPALS,
                   "seeded_per_principal": SEED_PER_PRINCIPAL, "mix": dict(MIX), "embedder": embedder,
                   "server": "memcubed serve, one uvicorn process, SQLite WAL, loopback"},
        "elapsed_s": round(elapsed, 1),
        "requests": total,
        "throughput_per_s": round(total / elapsed, 1),
        "errors": sum(stats.errors.values()),
        "errors_by_kind": dict(stats.errors),
        "lost_writes": checked["missing"] + checked["changed"],
        "read_back": checked,
        "operations": per_op,
    }


def summary(result: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    lines = [f"{result['config']['clients']} clients, {result['elapsed_s']} s: {result['requests']} requests "
             f"({result['throughput_per_s']}/s), errors {result['errors']}, lost writes {result['lost_writes']} "
             f"of {result['read_back']['checked']} read back"]
    for op, s in result["operations"].items():
        lines.append(f"  {op:6} {s['count']:6} ({s['per_s']}/s)  p50 {s['p50_ms']} ms  p95 {s['p95_ms']} ms  "
                     f"p99 {s['p99_ms']} ms")
    return "\n".join(lines)


def main(data: Path, *, clients: int = 50, duration: float = 60.0, embedder: str = "local") -> dict[str, Any]:
    """Run and write ``bench/results/load.json`` (``load_<embedder>.json`` for another embedder than local)."""
    result = run(data, clients=clients, duration=duration, embedder=embedder)
    write_result("load" if embedder == "local" else f"load_{embedder}", result)
    return result


if __name__ == "__main__":
    load_cli(__doc__, main, summary)
