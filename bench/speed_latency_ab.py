"""Same-run A/B of search latency between two checkouts of memcubed (issue 16: the search path's fetching and
loading), on stores built once by ``bench.speed.fill`` and reused by every arm.

Each arm is a worker process whose ``PYTHONPATH`` puts its checkout's ``src`` first, on its own copy of the
store (a search writes access events, so the arms never share a file). The driver sends each question to both
workers in turn, alternating which goes first, with the query-vector cache emptied before each search, and
checks that both arms return the same hits with the same scores. The JSON carries per-arm p50/p95 of
``embed_ms``, ``index_ms``, ``total_ms`` and CPU ms, the after/before ratios and the load average.

``python -m bench.speed_latency_ab build --out DIR`` builds ``DIR/10000`` and ``DIR/100000``;
``python -m bench.speed_latency_ab ab --stores DIR --before SRC --after SRC`` runs the A/B and writes
``bench/results/speed_latency_ab.json``; ``--locomo FOLDER`` adds the same A/B on a LoCoMo store built by
``bench.tune_retrieval build`` (every question with evidence, in its conversation's namespace: turns with
sources, so exchange scoring reads neighbours, which the speed corpus has none of);
``profile --store DIR/10000 --mode hybrid`` prints a cProfile of 200 searches.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import percentile, write_result

SIZES = (10_000, 100_000)
DB = "speed.db"
BENCH_ROOT = Path(__file__).resolve().parent.parent


def _embedder(spec: str, query_runtime: str | None = None) -> Any:
    from memcubed.backends.embedders import make_embedder

    # Only this branch's make_embedder knows query_runtime: a checkout before it gets the plain call.
    embedder = make_embedder(spec, query_runtime=query_runtime) if query_runtime else make_embedder(spec)
    assert embedder is not None
    return embedder


def build(data: Path, out: Path, sizes: tuple[int, ...] = SIZES, spec: str = "local") -> None:
    """Build one store per size under ``out/<size>`` (each the previous one grown), with ``bench.speed``'s
    corpus and jittered vectors; base vectors come from the bench embed cache when it is set."""
    import memcubed
    from bench.embed_cache import CachedEmbedder
    from bench.speed import corpus, fill

    texts, _ = corpus(data)
    embedder = _embedder(spec)
    cache = os.environ.get("MEMCUBED_BENCH_EMBED_CACHE")
    base = (CachedEmbedder(embedder, Path(cache)) if cache else embedder).embed(texts)
    rng = np.random.default_rng(0)
    work = out / "building"
    work.mkdir(parents=True, exist_ok=True)
    count = 0
    for size in sizes:
        with memcubed.open(work / DB, embedder=embedder) as admin:
            if count == 0:
                admin.create_principal("bench")
            mc = admin.as_principal("bench")
            if count == 0:
                mc.add_many([{"text": t, "namespace": "bench"} for t in texts[:500]])
                count = 500
            t0 = time.perf_counter()
            fill(mc, texts, base, rng, count, size)
            print(f"filled {size} in {time.perf_counter() - t0:.0f} s", flush=True)
            count = size
        shutil.copytree(work, out / str(size), dirs_exist_ok=True)
    shutil.rmtree(work)


def worker(db: Path, spec: str, principal: str | None, namespace: str, query_runtime: str | None = None) -> None:
    """Answer one search per stdin line (``{"q", "mode", "ns"}``) on the store file ``db`` with this process's
    memcubed; one JSON line of timings and hits each."""
    import memcubed
    from memcubed.backends.embedders.querycache import QUERY_CACHE

    embedder = _embedder(spec, query_runtime) if spec != "none" else None
    client = memcubed.open(db, embedder=embedder)
    client.kernel.store.warm(namespace)
    user = client.as_principal(principal) if principal else client
    user.search("warm up", namespace=namespace, k=10)  # one-time loads
    print(json.dumps({"ready": memcubed.__file__}), flush=True)
    for line in sys.stdin:
        ask = json.loads(line)
        QUERY_CACHE.clear()
        cpu = time.process_time()
        result = user.search(ask["q"], namespace=ask["ns"], k=10, mode=ask["mode"])
        print(json.dumps({"embed_ms": result.embed_ms, "index_ms": result.index_ms, "total_ms": result.total_ms,
                          "cpu_ms": (time.process_time() - cpu) * 1000,
                          "hits": [[h.cube.id, round(h.score, 9)] for h in result.hits]}), flush=True)
    client.close()


def _start(src: Path, db: Path, spec: str, principal: str | None, namespace: str,
           query_runtime: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{src}:{BENCH_ROOT}"}
    env.pop("MEMCUBED_BENCH_EMBED_CACHE", None)  # queries embed for real in both arms
    who = ["--principal", principal] if principal else []
    who += ["--query-runtime", query_runtime] if query_runtime else []
    proc = subprocess.Popen([sys.executable, "-m", "bench.speed_latency_ab", "worker", "--store", str(db),
                             "--embedder", spec, "--namespace", namespace, *who], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd=BENCH_ROOT)
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    assert str(ready["ready"]).startswith(str(src)), (ready, src)
    return proc


def _ask(proc: subprocess.Popen[str], question: tuple[str, str], mode: str) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"ns": question[0], "q": question[1], "mode": mode}) + "\n")
    proc.stdin.flush()
    return dict(json.loads(proc.stdout.readline()))


def _summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in ("embed_ms", "index_ms", "total_ms", "cpu_ms"):
        values = [float(r[key]) for r in rows]
        out[f"{key}_p50"] = round(percentile(values, 50), 2)
        out[f"{key}_p95"] = round(percentile(values, 95), 2)
    return out


def ab(store: Path, arms: dict[str, Path], questions: list[tuple[str, str]], modes: tuple[str, ...], spec: str,
       rounds: int = 1, *, db: str = DB, principal: str | None = "bench",
       query_runtimes: dict[str, str] | None = None, copies: int = 1) -> dict[str, Any]:
    """Interleave ``questions`` ((namespace, question), ``rounds`` passes) between ``arms`` (name → checkout's
    ``src``) on copies of the store folder ``store``, per mode; counts the searches whose hits or scores differ
    between the arms (``query_runtimes``: an arm's embedder query runtime, when it is not the default).

    ``copies`` > 1 runs that many worker processes per arm (asked in turn like arms): an arm's summary pools
    them, and ``copies_total_ms_p50`` lists each one's own p50, whose spread is the noise between processes of
    the same code (up to 17 % at load 5–9 here, NOTES lat4)."""
    load_before = os.getloadavg()
    out: dict[str, Any] = {}
    workers = {f"{name}#{c}": name for name in arms for c in range(copies)}
    with tempfile.TemporaryDirectory(dir=store.parent) as tmp:
        procs = {}
        for worker, name in workers.items():
            shutil.copytree(store, Path(tmp) / worker)
            procs[worker] = _start(arms[name], Path(tmp) / worker / db, spec, principal, questions[0][0],
                                   (query_runtimes or {}).get(name))
        try:
            for mode in modes:
                rows: dict[str, list[dict[str, Any]]] = {worker: [] for worker in workers}
                differ = differ_ids = 0
                for i, question in enumerate(questions * rounds):
                    order = list(workers) if i % 2 == 0 else list(reversed(workers))
                    got = {worker: _ask(procs[worker], question, mode) for worker in order}
                    for worker in workers:
                        rows[worker].append(got[worker])
                    differ += len({json.dumps(g["hits"]) for g in got.values()}) > 1
                    differ_ids += len({json.dumps([h[0] for h in g["hits"]]) for g in got.values()}) > 1
                out[mode] = {name: _summary([r for w, n in workers.items() if n == name for r in rows[w]])
                             for name in arms}
                if copies > 1:
                    for name in arms:
                        out[mode][name]["copies_total_ms_p50"] = [
                            _summary(rows[w])["total_ms_p50"] for w, n in workers.items() if n == name]
                first, last = arms
                out[mode][f"{last}_over_{first}"] = {
                    key: round(out[mode][last][key] / out[mode][first][key], 3)
                    for key in out[mode][first] if key != "copies_total_ms_p50" and out[mode][first][key]}
                out[mode]["searches_with_different_hits"] = differ
                out[mode]["searches_with_different_ids"] = differ_ids  # the same ids in order, scores aside
        finally:
            for proc in procs.values():
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(timeout=60)
    out["load_average"] = {"before": [round(x, 2) for x in load_before],
                           "after": [round(x, 2) for x in os.getloadavg()]}
    out["searches_per_arm_per_mode"] = len(questions) * rounds * copies
    return out


def profile(store: Path, mode: str, spec: str, queries: int, top: int, query_runtime: str | None = None) -> None:
    """cProfile ``queries`` searches in ``mode`` on ``store`` with this process's memcubed; print the top."""
    import memcubed
    from bench.speed import corpus
    from memcubed.backends.embedders.querycache import QUERY_CACHE

    _, questions = corpus(Path(os.environ.get("LOCOMO", "/work/shared/data/locomo/locomo_dev.json")))
    embedder = _embedder(spec, query_runtime) if spec != "none" else None
    with tempfile.TemporaryDirectory(dir=store.parent) as tmp:
        shutil.copytree(store, Path(tmp) / "p")
        with memcubed.open(Path(tmp) / "p" / DB, embedder=embedder) as client:
            client.kernel.store.warm("bench")
            user = client.as_principal("bench")
            user.search("warm up", namespace="bench", k=10)
            prof = cProfile.Profile()
            t0 = time.perf_counter()
            prof.enable()
            for q in questions[:queries]:
                QUERY_CACHE.clear()
                user.search(q, namespace="bench", k=10, mode=mode)
            prof.disable()
            print(f"{queries} searches in {time.perf_counter() - t0:.2f} s, load {os.getloadavg()}")
            pstats.Stats(prof).sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=("build", "worker", "ab", "profile"))
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/locomo/locomo_dev.json"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--store", type=Path)
    parser.add_argument("--stores", type=Path)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--before", type=Path)
    parser.add_argument("--after", type=Path)
    parser.add_argument("--embedder", default="local")
    parser.add_argument("--modes", nargs="+", default=["hybrid", "lexical"])
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--copies", type=int, default=1, help="ab: worker processes per arm (their spread: noise)")
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--name", default="speed_latency_ab")
    parser.add_argument("--principal", default=None)
    parser.add_argument("--namespace", default="bench")
    parser.add_argument("--locomo", type=Path, help="a folder built by bench.tune_retrieval build")
    parser.add_argument("--query-runtime", help="worker / profile: the embedder's query runtime (fp32 | int8)")
    parser.add_argument("--after-query-runtime", help="ab: the after arm's query runtime (fp32 | int8)")
    args = parser.parse_args()
    if args.command == "build":
        build(args.data, args.out, tuple(args.sizes), args.embedder)
    elif args.command == "worker":
        worker(args.store, args.embedder, args.principal, args.namespace, args.query_runtime)
    elif args.command == "profile":
        profile(args.store, args.mode, args.embedder, args.queries, args.top, args.query_runtime)
    else:
        from bench.speed import corpus

        _, questions = corpus(args.data)
        asked = [("bench", q) for q in questions[: args.queries]]
        arms = {"before": args.before.resolve(), "after": args.after.resolve()}
        runtimes = {"after": args.after_query_runtime} if args.after_query_runtime else {}
        result: dict[str, Any] = {"arms": {k: str(v) for k, v in arms.items()}, "embedder": args.embedder,
                                  "query_runtimes": runtimes, "sizes": {}}
        for size in args.sizes if args.stores else ():
            result["sizes"][str(size)] = ab(args.stores / str(size), arms, asked, tuple(args.modes), args.embedder,
                                            args.rounds, query_runtimes=runtimes, copies=args.copies)
            print(json.dumps({size: result["sizes"][str(size)]}, indent=1), flush=True)
        if args.locomo:
            result["locomo"] = ab(args.locomo, arms, _locomo_questions(args.data), ("hybrid",), args.embedder,
                                  args.rounds, db="locomo.db", principal=None, query_runtimes=runtimes,
                                  copies=args.copies)
            print(json.dumps({"locomo": result["locomo"]}, indent=1), flush=True)
        write_result(args.name, result)


def _locomo_questions(data: Path) -> list[tuple[str, str]]:
    from memcubed.datasets.locomo import load_locomo

    return [(f"locomo-{c.sample_id}", q.question) for c in load_locomo(data) for q in c.questions if q.evidence]


if __name__ == "__main__":
    main()
