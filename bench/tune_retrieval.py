"""Tuning aid for retrieval settings: build the LoCoMo and LongMemEval-S dev stores once, then score many
``TextConfig`` variants against them without re-indexing.

``python -m bench.tune_retrieval build <folder> [--limit N]`` indexes every store under ``<folder>`` (set
``MEMCUBED_BENCH_EMBED_CACHE`` to reuse vectors); ``python -m bench.tune_retrieval score <folder> '<json>'...``
prints the recall tables (same metrics as bench/retrieval.py and bench/retrieval_longmemeval.py) and search p50
for each JSON object of TextConfig overrides. Dev data only: the figures it prints are for choosing defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import memcubed
from bench import retrieval, retrieval_longmemeval
from bench.embed_cache import bench_embedder
from memcubed.datasets.locomo import Question, load_locomo
from memcubed.datasets.longmemeval import Haystack, load_longmemeval
from memcubed.engines.text.config import TextConfig

DATA = Path(os.environ.get("MEMCUBED_BENCH_DATA", "../shared/data"))  # the shared folder beside the checkout
LOCOMO = DATA / "locomo/locomo_dev.json"
LME = DATA / "longmemeval/longmemeval_s_dev.json.gz"


def build(folder: Path, limit: int | None, embedder: str = "local") -> None:
    """Index LoCoMo into ``folder/locomo.db`` and each LongMemEval haystack into ``folder/lme/<i>.db``."""
    model = bench_embedder(embedder)
    (folder / "lme").mkdir(parents=True, exist_ok=True)
    if not (folder / "locomo.db").exists():
        with memcubed.open(folder / "locomo.db", embedder=model) as mc:
            for conv in load_locomo(LOCOMO):
                mc.add_many(conv.memories(f"locomo-{conv.sample_id}"))
    for i, hay in enumerate(load_longmemeval(LME)[:limit]):
        path = folder / "lme" / f"{i:03d}.db"
        if path.exists():
            continue
        with memcubed.open(path.with_suffix(".tmp"), embedder=model) as mc:
            mc.add_many(hay.memories("lme"))
        for part in path.parent.glob(f"{path.stem}.tmp*"):  # the store and its audit sidecars
            part.rename(path.parent / part.name.replace(".tmp", ".db", 1))
        print(f"built {path}", file=sys.stderr, flush=True)


def locomo_questions(folder: Path, config: TextConfig, model: Any
                     ) -> Iterator[tuple[memcubed.Memcubed, str, Question]]:
    """Every LoCoMo question with evidence, with the built store (``config`` set) and its conversation's
    namespace."""
    with memcubed.open(folder / "locomo.db", embedder=model) as mc:
        mc.kernel.text.config = config
        for conv in load_locomo(LOCOMO):
            for q in conv.questions:
                if q.evidence:
                    yield mc, f"locomo-{conv.sample_id}", q


def lme_stores(folder: Path, config: TextConfig, model: Any, limit: int | None
               ) -> Iterator[tuple[memcubed.Memcubed, Haystack]]:
    """Each LongMemEval haystack whose store was built under ``folder/lme``, in order, with that store open
    (``config`` set); stops at the first one not built."""
    for i, hay in enumerate(load_longmemeval(LME)[:limit]):
        path = folder / "lme" / f"{i:03d}.db"
        if not path.exists():
            return
        with memcubed.open(path, embedder=model) as mc:
            mc.kernel.text.config = config
            yield mc, hay


def score(folder: Path, overrides: dict[str, Any], modes: tuple[str, ...] = ("hybrid",),
          limit: int | None = None, embedder: str = "local") -> dict[str, Any]:
    """Recall tables and search p50 (ms) of both benchmarks with ``TextConfig(**overrides)``."""
    config = TextConfig(**overrides)
    model = bench_embedder(embedder)
    times: list[float] = []
    loc: dict[str, dict[int, list[tuple[float, float]]]] = {m: defaultdict(list) for m in modes}
    for mc, namespace, q in locomo_questions(folder, config, model):
        gold = set(q.evidence)
        for mode in modes:
            t0 = time.perf_counter()
            hits = mc.search(q.question, namespace=namespace, k=10, mode=mode).hits
            times.append((time.perf_counter() - t0) * 1000)
            refs = [h.cube.source.ref for h in hits]
            loc[mode][q.category].append(
                (len(gold & set(refs[:5])) / len(gold), len(gold & set(refs[:10])) / len(gold)))
    lme: dict[str, dict[str, list[dict[str, float | None]]]] = {m: defaultdict(list) for m in modes}
    for mc, hay in lme_stores(folder, config, model, limit):
        for mode in modes:
            t0 = time.perf_counter()
            hits = mc.search(hay.question, namespace="lme", k=10, mode=mode, question_date=hay.question_date).hits
            times.append((time.perf_counter() - t0) * 1000)
            lme[mode][hay.question_type].append(
                retrieval_longmemeval.score(hay, [h.cube.source.ref or "" for h in hits]))
    return {"config": overrides, "search_p50_ms": round(statistics.median(times), 2) if times else None,
            "locomo": {m: retrieval._summarise(t) for m, t in loc.items()},
            "longmemeval": {m: retrieval_longmemeval.summarise(t) for m, t in lme.items()}}


_SUMMARY = ("multi-hop", "temporal", "open-domain", "single-hop", "adversarial", "all")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tune_retrieval")
    parser.add_argument("action", choices=("build", "score"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("configs", nargs="*", default=["{}"])
    parser.add_argument("--limit", type=int, help="LongMemEval questions (stores) to build or score")
    parser.add_argument("--modes", default="hybrid")
    parser.add_argument("--full", action="store_true", help="print every category, not just the summary")
    parser.add_argument("--embedder", default="local", help="the embedder spec the stores are built with")
    args = parser.parse_args()
    if args.action == "build":
        build(args.folder, args.limit, args.embedder)
        return
    for raw in args.configs:
        out = score(args.folder, json.loads(raw), tuple(args.modes.split(",")), args.limit, args.embedder)
        if not args.full:
            out = {"config": out["config"], "p50": out["search_p50_ms"],
                   **{f"loc_{m}": {k: t[k] for k in _SUMMARY if k in t} for m, t in out["locomo"].items()},
                   **{f"lme_{m}": t.get("all") for m, t in out["longmemeval"].items()}}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
