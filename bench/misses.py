"""Why retrieval misses, and paired comparisons of retrieval settings, over stores built by ``bench.tune_retrieval``.

``python -m bench.misses diagnose <folder> ['<json>']`` lists, per LoCoMo category, each gold turn missed at
k = 10 (hybrid) with the settings ``TextConfig(**json)``: its rank in the top 100 (or "beyond"), whether it
shares a content word other than a speaker's name with the question (as the lexical index sees them), and whether
it is adjacent (±1, ±2 turns of the same session) to one of the top-10 hits; then prints the breakdown.

``python -m bench.misses compare <folder> '<base json>' '<json>'... [--limit N]`` scores the base and each
other setting per question (LoCoMo recall@10 by category and all; LongMemEval-S turn recall@10 and session
recall_all@5 / @10 over the first N haystacks that are built) and prints each difference with its 95 % paired
bootstrap interval (``bench/paired.py``) and the search p50 ratio to the base, measured in the same run.

``--half a`` / ``--half b`` keeps only the even- / odd-indexed questions (LoCoMo: the index of a question among
those with evidence, in file order; LongMemEval-S: the haystack index), so that settings are chosen on one half
and confirmed on the other. ``diagnose --category multi-hop --show N`` prints N missed questions of that
category with their gold turns' ranks and the top 10 they lost to. Dev data only.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import memcubed
from bench import retrieval_longmemeval
from bench.embed_cache import bench_embedder
from bench.paired import paired_difference
from bench.tune_retrieval import LME, LOCOMO, locomo_questions
from memcubed.datasets.locomo import CATEGORIES, load_locomo
from memcubed.datasets.longmemeval import Haystack, load_longmemeval
from memcubed.engines.text.config import TextConfig
from memcubed.engines.text.engine import TextEngine

_TURN = re.compile(r"D(\d+):(\d+)")
_DEEP = 100


def _where(ref: str) -> tuple[int, int] | None:
    found = _TURN.fullmatch(ref or "")
    return (int(found.group(1)), int(found.group(2))) if found else None


def _adjacent(ref: str, top: list[str], span: int) -> bool:
    here = _where(ref)
    if here is None:
        return False
    for other in top:
        there = _where(other)
        if there and there[0] == here[0] and 0 < abs(there[1] - here[1]) <= span:
            return True
    return False


def _in_half(index: int, half: str | None) -> bool:
    """Whether question (or haystack) ``index`` belongs to ``half``: ``a`` even, ``b`` odd, None both."""
    return half is None or index % 2 == (0 if half == "a" else 1)


def diagnose(folder: Path, overrides: dict[str, Any], half: str | None = None, category: str | None = None,
             show: int = 5) -> dict[str, Any]:
    """Per category: the misses at k = 10 and the reasons, with up to ``show`` examples each (``category``:
    that one only, each example with the top 10 it lost to)."""
    engine = TextEngine()
    table: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    index = -1
    with memcubed.open(folder / "locomo.db", embedder=bench_embedder("local")) as mc:
        mc.kernel.text.config = TextConfig(**overrides)
        for conv in load_locomo(LOCOMO):
            for q in conv.questions:
                if not q.evidence:
                    continue
                index += 1
                if not _in_half(index, half) or (category and CATEGORIES[q.category] != category):
                    continue
                cat = CATEGORIES[q.category]
                ns = f"locomo-{conv.sample_id}"
                speakers = {t.speaker.lower() for t in conv.turns}
                found = mc.search(q.question, namespace=ns, k=10)
                top = [h.cube.source.ref or "" for h in found.hits]
                deep = [h.cube.source.ref or "" for h in mc.search(q.question, namespace=ns, k=_DEEP).hits]
                asked = set(engine.query_terms(q.question))
                table[cat]["gold"] += len(set(q.evidence))
                lost: list[dict[str, Any]] = []
                for ref in dict.fromkeys(q.evidence):
                    if ref in top:
                        continue
                    turn = conv.by_id.get(ref)
                    words = set(engine.query_terms(turn.document if turn else "")) - speakers
                    rank = deep.index(ref) + 1 if ref in deep else None
                    row = {"miss": 1, "rank 11-20": rank is not None and rank <= 20,
                           "rank 21-50": rank is not None and 20 < rank <= 50,
                           "rank 51-100": rank is not None and rank > 50, "beyond 100": rank is None,
                           "shares a non-name content word": bool(asked & words),
                           "adjacent ±1 to a top-10 hit": _adjacent(ref, top, 1),
                           "adjacent ±2 to a top-10 hit": _adjacent(ref, top, 2)}
                    table[cat].update({k: int(v) for k, v in row.items()})
                    lost.append({"ref": ref, "gold": turn.document[:160] if turn else ref, "rank": rank})
                if lost and len(examples[cat]) < show:
                    example: dict[str, Any] = {"i": index, "q": q.question, "answer": q.answer, "lost": lost,
                                               "found": [r for r in top if r in q.evidence]}
                    if category:
                        example["route"] = found.explanation
                        example["top"] = [(h.cube.source.ref, (h.cube.text or "")[:100]) for h in found.hits]
                    examples[cat].append(example)
    for cat in list(table):
        table["all"].update(table[cat])
    return {"config": overrides, "table": {c: dict(t) for c, t in table.items()}, "examples": examples}


def _haystacks(folder: Path, limit: int | None, half: str | None) -> list[tuple[int, Haystack]]:
    """The LongMemEval-S haystacks among the first ``limit`` whose stores are built under ``folder``, in ``half``."""
    return [(i, hay) for i, hay in enumerate(load_longmemeval(LME)[:limit])
            if _in_half(i, half) and (folder / "lme" / f"{i:03d}.db").exists()]


def _per_question(folder: Path, overrides: dict[str, Any], haystacks: list[tuple[int, Haystack]],
                  half: str | None, model: Any = None) -> dict[str, Any]:
    """Per-question recall@10 (LoCoMo, by category) and LongMemEval turn recall@10 and session recall_all@5 /
    @10 over ``haystacks``, and timings (``model``: the embedder to open the stores with; the bench's local one
    when None)."""
    model = model if model is not None else bench_embedder("local")
    config = TextConfig(**overrides)
    loc: dict[str, list[float]] = defaultdict(list)
    times: list[float] = []
    for index, (mc, namespace, q) in enumerate(locomo_questions(folder, config, model)):
        if not _in_half(index, half):
            continue
        t0 = time.perf_counter()
        hits = mc.search(q.question, namespace=namespace, k=10).hits
        times.append(time.perf_counter() - t0)
        gold = set(q.evidence)
        got = len(gold & {h.cube.source.ref for h in hits}) / len(gold)
        loc[CATEGORIES[q.category]].append(got)
        loc["all"].append(got)
    lme: dict[str, list[float]] = defaultdict(list)
    for i, hay in haystacks:
        with memcubed.open(folder / "lme" / f"{i:03d}.db", embedder=model) as mc:
            mc.kernel.text.config = config
            hits = mc.search(hay.question, namespace="lme", k=10, question_date=hay.question_date).hits
        row = retrieval_longmemeval.score(hay, [h.cube.source.ref or "" for h in hits])
        for key in ("turn_r@10", "sess_all@5", "sess_all@10"):
            if row[key] is not None:
                lme[key].append(float(row[key] or 0.0))
    return {"locomo": loc, "lme": lme, "p50_s": statistics.median(times)}


def compare(folder: Path, base: dict[str, Any], others: list[dict[str, Any]], limit: int | None,
            half: str | None = None) -> list[Any]:
    """The base's figures, then each other setting's paired differences to it (points, 95 % CI)."""
    haystacks = _haystacks(folder, limit, half)  # fixed now: a build still under way must not change them
    ref = _per_question(folder, base, haystacks, half)
    out: list[Any] = [{"config": base, "half": half, "lme_n": len(haystacks), **_means(ref)}]
    for other in others:
        got = _per_question(folder, other, haystacks, half)
        diffs = {f"loc {k}": paired_difference(ref["locomo"][k], v) for k, v in got["locomo"].items()}
        diffs |= {f"lme {k}": paired_difference(ref["lme"][k], v) for k, v in got["lme"].items()}
        out.append({"config": other, **_means(got), "p50_ratio": round(got["p50_s"] / ref["p50_s"], 2),
                    "diff": {k: [d["mean"], *d["ci95"]] for k, d in diffs.items()}})
        print(json.dumps(out[-1]), flush=True)
    return out


def _means(run: dict[str, Any]) -> dict[str, Any]:
    return {"loc_r@10": {k: round(100 * statistics.mean(v), 1) for k, v in run["locomo"].items()},
            "lme_r@10": {k: round(100 * statistics.mean(v), 1) for k, v in run["lme"].items()},
            "p50_ms": round(1000 * run["p50_s"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.misses")
    parser.add_argument("action", choices=("diagnose", "compare"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("configs", nargs="*", default=["{}"])
    parser.add_argument("--limit", type=int, default=20, help="LongMemEval haystacks to compare over")
    parser.add_argument("--half", choices=("a", "b"), help="even- (a) or odd-indexed (b) questions only")
    parser.add_argument("--category", help="diagnose: this LoCoMo category only, with each miss's top 10")
    parser.add_argument("--show", type=int, default=5, help="diagnose: examples printed per category")
    args = parser.parse_args()
    configs = [json.loads(raw) for raw in args.configs]
    if args.action == "diagnose":
        for config in configs:
            print(json.dumps(diagnose(args.folder, config, args.half, args.category, args.show), indent=1),
                  flush=True)
        return
    first = compare(args.folder, configs[0], configs[1:], args.limit, args.half)[0]
    print(json.dumps(first), file=sys.stderr)


if __name__ == "__main__":
    main()
