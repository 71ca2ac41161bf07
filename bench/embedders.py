"""Packaged embedders side by side: vector-only and hybrid recall on LoCoMo and LongMemEval-S dev, embed time
per turn and per query (p50), load time and memory (RSS delta), one process per run.

``python -m bench.embedders --embedders local static [--locomo-conversations N] [--lme-limit N]``; writes
``bench/results/embedders.json`` (or ``embedders_<tag>.json`` with ``--tag``). Slow models are measured on
a subset (the result records which). Query embedding is timed on the raw model, one query per call, with
no cache; recall runs embed each distinct text once (and through ``MEMCUBED_BENCH_EMBED_CACHE`` when set).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import memcubed
from bench import retrieval
from bench.common import percentile, write_result
from bench.embed_cache import CachedEmbedder
from bench.paired import paired_difference
from bench.retrieval import _summarise
from bench.retrieval_longmemeval import DATA as LME_DATA
from bench.retrieval_longmemeval import KS, score, summarise
from memcubed.backends.base import Embedder
from memcubed.composition import build_embedder
from memcubed.datasets.locomo import load_locomo
from memcubed.datasets.longmemeval import load_longmemeval

MODES = ("hybrid", "vector")
LOCOMO = Path("../shared/data/locomo/locomo_dev.json")


def rss_mb() -> float:
    """This process's resident memory in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _Memo:
    """``inner``'s vectors, each distinct text embedded once per process."""

    def __init__(self, inner: Embedder, *, chunks: bool = True) -> None:
        self.name, self.dim, self._inner = inner.name, inner.dim, inner
        self.window_tokens = inner.window_tokens if chunks else 0
        self.fingerprint = inner.fingerprint
        self._rows: dict[str, npt.NDArray[np.float32]] = {}

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._rows))
        if missing:
            self._rows.update(zip(missing, self._inner.embed(missing), strict=True))
        return np.stack([self._rows[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def _settings(model: Embedder) -> memcubed.Settings:
    """Windows of long memories embedded when the run asks for them (``--no-chunks`` zeroes the window)."""
    return memcubed.Settings(embed_windows=model.window_tokens > 0)


def profile(spec: str, turns: list[str], queries: list[str]) -> tuple[Embedder, dict[str, Any]]:
    """Load ``spec`` and time it: load (with one warm-up text), per turn in batches, per query alone."""
    rss0, t0 = rss_mb(), time.perf_counter()
    model = build_embedder(spec)
    assert model is not None
    model.embed(["warm up"])
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for start in range(0, len(turns), 64):
        model.embed(turns[start:start + 64])
    per_turn = (time.perf_counter() - t0) * 1000 / max(1, len(turns))
    single = []
    for q in queries:
        t0 = time.perf_counter()
        model.embed([q])
        single.append((time.perf_counter() - t0) * 1000)
    return model, {"name": model.name, "dim": model.dim, "load_s": round(load_s, 2),
                   "rss_delta_mb": round(rss_mb() - rss0, 1), "timed_turns": len(turns),
                   "embed_ms_per_turn": round(per_turn, 3), "timed_queries": len(queries),
                   "query_embed_ms_p50": round(percentile(single, 50), 3),
                   "query_embed_ms_p95": round(percentile(single, 95), 3)}


def locomo(model: Embedder, conversations: int | None, data: Path = LOCOMO) -> dict[str, Any]:
    """Vector-only and hybrid evidence recall@5/@10 on the first ``conversations`` LoCoMo conversations."""
    convs = load_locomo(data)[:conversations]
    recalls: dict[str, dict[int, list[tuple[float, float]]]] = {m: defaultdict(list) for m in MODES}
    with tempfile.TemporaryDirectory() as tmp, memcubed.open(Path(tmp) / "l.db", embedder=model,
                                                                 settings=_settings(model)) as mc:
        t0 = time.perf_counter()
        for conv in convs:
            mc.add_many(conv.memories(f"locomo-{conv.sample_id}"))
        ingest_s = time.perf_counter() - t0
        for conv in convs:
            for q in conv.questions:
                if q.evidence:
                    retrieval.ask(mc, conv.sample_id, q, recalls, MODES)
    return {"conversations": len(convs), "turns": sum(len(c.turns) for c in convs),
            "ingest_s": round(ingest_s, 1), "recall": {m: _summarise(r) for m, r in recalls.items()},
            "per_question": {m: {f"r@{k}": [row[i] for c in sorted(r) for row in r[c]] for i, k in enumerate(KS)}
                             for m, r in recalls.items()}}


def longmemeval(model: Embedder, limit: int | None, data: Path = LME_DATA, *, reverse: bool = False) -> dict[str, Any]:
    """Vector-only and hybrid turn and session recall on the first ``limit`` LongMemEval-S dev questions.

    ``reverse`` indexes the haystacks last first (the figures are the same): a second run filling the shared
    vector cache from the other end meets the first one halfway instead of racing it for the same texts.
    """
    haystacks = load_longmemeval(data)[:limit]
    scored: dict[int, dict[str, dict[str, float | None]]] = {}
    ingest: list[float] = []
    for i in sorted(range(len(haystacks)), reverse=reverse):
        hay = haystacks[i]
        with tempfile.TemporaryDirectory() as tmp, memcubed.open(Path(tmp) / "h.db", embedder=model,
                                                                     settings=_settings(model)) as mc:
            t0 = time.perf_counter()
            mc.add_many(hay.memories("lme"))
            ingest.append(time.perf_counter() - t0)
            scored[i] = {mode: score(hay, [h.cube.source.ref or "" for h in mc.search(
                hay.question, namespace="lme", k=max(KS), mode=mode, question_date=hay.question_date).hits])
                for mode in MODES}
    rows: dict[str, dict[str, list[dict[str, float | None]]]] = {m: defaultdict(list) for m in MODES}
    for i in sorted(scored):
        for mode in MODES:
            rows[mode][haystacks[i].question_type].append(scored[i][mode])
    return {"questions": len(haystacks), "ingest_s_median": round(statistics.median(ingest), 2) if ingest else None,
            "recall": {m: summarise(r) for m, r in rows.items()},
            "per_question": {m: {f"turn_r@{k}": [scored[i][m][f"turn_r@{k}"] or 0.0 for i in sorted(scored)
                                                 if scored[i][m][f"turn_r@{k}"] is not None] for k in KS}
                             for m in MODES}}


def run(specs: list[str], *, conversations: int | None, lme_limit: int | None, timing_turns: int,
        skip_lme: bool = False, locomo_data: Path = LOCOMO, lme_data: Path = LME_DATA, chunks: bool = True,
        skip_locomo: bool = False, reverse: bool = False) -> dict[str, Any]:
    """Profile and measure each embedder in turn."""
    convs = load_locomo(locomo_data)
    turns = [t.document for c in convs for t in c.turns]
    step = max(1, len(turns) // timing_turns)
    sample, queries = turns[::step][:timing_turns], [q.question for c in convs for q in c.questions][:100]
    out: dict[str, Any] = {"embedders": {}}
    cache = os.environ.get("MEMCUBED_BENCH_EMBED_CACHE")
    for spec in specs:
        model, row = profile(spec, sample, queries)
        used: Embedder = _Memo(CachedEmbedder(model, Path(cache)) if cache else model, chunks=chunks)
        if not skip_locomo:
            row["locomo"] = locomo(used, conversations, locomo_data)
        if not skip_lme:
            row["longmemeval"] = longmemeval(used, lme_limit, lme_data, reverse=reverse)
        out["embedders"][spec] = row
        print(spec, {k: v for k, v in row.items() if k not in ("locomo", "longmemeval")},
              {m: row["locomo"]["recall"][m]["all"] for m in MODES} if not skip_locomo else "",
              {m: row["longmemeval"]["recall"][m]["all"] for m in MODES} if not skip_lme else "", flush=True)
    out["embedding_cache"] = bool(cache)
    out["paired_vs_first"] = compare(out["embedders"])
    for row in out["embedders"].values():  # thousands of numbers: the paired summary above is what is kept
        for bench in ("locomo", "longmemeval"):
            row.get(bench, {}).pop("per_question", None)
    return out


def compare(rows: dict[str, Any]) -> dict[str, Any]:
    """Each embedder after the first against the first, question by question (see ``bench.paired``)."""
    specs = list(rows)
    out: dict[str, Any] = {}
    for spec in specs[1:]:
        for bench in ("locomo", "longmemeval"):
            if bench not in rows[spec] or bench not in rows[specs[0]]:
                continue
            base, other = rows[specs[0]][bench]["per_question"], rows[spec][bench]["per_question"]
            out.setdefault(spec, {})[bench] = {mode: {metric: paired_difference(base[mode][metric], values)
                                                      for metric, values in per.items()}
                                               for mode, per in other.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--embedders", nargs="+", default=["local", "static"])
    parser.add_argument("--locomo-conversations", type=int, default=None)
    parser.add_argument("--lme-limit", type=int, default=None)
    parser.add_argument("--timing-turns", type=int, default=500)
    parser.add_argument("--skip-lme", action="store_true")
    parser.add_argument("--skip-locomo", action="store_true")
    parser.add_argument("--no-chunks", action="store_true", help="embed only each memory's first window")
    parser.add_argument("--reverse", action="store_true", help="index LongMemEval haystacks last first")
    parser.add_argument("--tag", default="")
    parser.add_argument("--locomo", type=Path, default=LOCOMO)
    parser.add_argument("--lme", type=Path, default=LME_DATA)
    args = parser.parse_args()
    result = run(args.embedders, conversations=args.locomo_conversations, lme_limit=args.lme_limit,
                 timing_turns=args.timing_turns, skip_lme=args.skip_lme, locomo_data=args.locomo, lme_data=args.lme,
                 chunks=not args.no_chunks, skip_locomo=args.skip_locomo, reverse=args.reverse)
    result["args"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    write_result("embedders" + (f"_{args.tag}" if args.tag else ""), result)


if __name__ == "__main__":
    main()
