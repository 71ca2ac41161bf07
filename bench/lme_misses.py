"""Why LongMemEval-S session recall_all@5 fails: per question type, how many answer sessions a question has,
where the missing session's best turn ranks, and whether the top 5 is crowded by several turns of one session.

``python -m bench.lme_misses <folder> ['<json TextConfig overrides>'] [--limit N] [--embedder static]`` reads the
stores ``python -m bench.tune_retrieval build <folder>`` wrote (``<folder>/lme/<i>.db``), asks each question
twice (k = 10, as the benchmark does, and k = 50 to see how deep a missing session lies) and writes
``bench/results/lme_misses[_<tag>].json``: one row per question and a summary per type. Dev data only.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.common import write_result
from bench.embed_cache import bench_embedder
from bench.tune_retrieval import lme_stores
from memcubed.datasets.longmemeval import Haystack
from memcubed.engines.text.config import TextConfig

DEEP = 50
BUCKETS = ((6, 10), (11, 20), (21, DEEP), (DEEP + 1, 10**9))


def diagnose(hay: Haystack, top10: list[str], top50: list[str]) -> dict[str, Any]:
    """One question's row: its answer sessions' best ranks (1-based; ``None`` beyond ``DEEP``) in the k = 10
    and the k = 50 lists, the sessions of the top 5 and the roles of its gold turns."""
    def session(ref: str) -> str:
        return ref.rsplit("#", 1)[0]

    def best(refs: list[str], sid: str) -> int | None:
        return next((r for r, ref in enumerate(refs, start=1) if session(ref) == sid), None)

    roles = {t.ref: t.role for t in hay.turns}
    top5 = Counter(session(ref) for ref in top10[:5])
    ranks = {sid: {"k10": best(top10, sid), "k50": best(top50, sid)} for sid in sorted(hay.answer_sessions)}
    missing = [sid for sid, r in ranks.items() if r["k10"] is None or r["k10"] > 5]
    crowder, crowd = top5.most_common(1)[0] if top5 else ("", 0)
    return {
        "question_id": hay.question_id, "type": hay.question_type, "question": hay.question,
        "answer_sessions": len(hay.answer_sessions), "gold_turns": len(hay.gold_turns),
        "gold_roles": dict(Counter(roles[ref] for ref in hay.gold_turns)),
        "sess_all@5": not missing, "missing": missing, "ranks": ranks,
        "top5_sessions": len(top5), "top5_crowd": crowd, "top5_crowder_is_answer": crowder in hay.answer_sessions,
        "top5_roles": dict(Counter(roles.get(ref, "?") for ref in top10[:5])),
        "turn_hits@10": len(hay.gold_turns & set(top10)),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per type (and ``all``): questions, misses at @5, answer sessions per question, where each missing
    session's best turn lies in the k = 50 list, and how many misses had a top 5 with two or more turns of one
    session that is not an answer session (crowding)."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_type[row["type"]].append(row)
        by_type["all"].append(row)
    out: dict[str, dict[str, Any]] = {}
    for kind, group in sorted(by_type.items()):
        misses = [r for r in group if not r["sess_all@5"]]
        depth: Counter[str] = Counter()
        for r in misses:
            for sid in r["missing"]:
                rank = r["ranks"][sid]["k50"] or DEEP + 1
                low, high = next(b for b in BUCKETS if b[0] <= rank <= b[1])
                depth[f"{low}-{high}" if high <= DEEP else f">{DEEP}"] += 1
        out[kind] = {
            "n": len(group), "miss@5": len(misses),
            "answer_sessions": dict(sorted(Counter(r["answer_sessions"] for r in group).items())),
            "answer_sessions_of_misses": dict(sorted(Counter(r["answer_sessions"] for r in misses).items())),
            "missing_session_rank_k50": dict(depth),
            "misses_crowded": sum(1 for r in misses if r["top5_crowd"] >= 2 and not r["top5_crowder_is_answer"]),
            "misses_top5_sessions": dict(sorted(Counter(r["top5_sessions"] for r in misses).items())),
            "gold_roles": dict(sum((Counter(r["gold_roles"]) for r in group), Counter())),
        }
    return out


def run(folder: Path, overrides: dict[str, Any], limit: int | None, embedder: str) -> dict[str, Any]:
    """Diagnose every haystack whose store exists under ``folder/lme`` with ``TextConfig(**overrides)``."""
    config = TextConfig(**overrides)
    model = bench_embedder(embedder)
    rows: list[dict[str, Any]] = []
    for mc, hay in lme_stores(folder, config, model, limit):
        refs = {k: [h.cube.source.ref or "" for h in mc.search(hay.question, namespace="lme", k=k,
                                                                question_date=hay.question_date).hits]
                for k in (10, DEEP)}
        rows.append(diagnose(hay, refs[10], refs[DEEP]))
    return {"folder": str(folder), "embedder": embedder, "config": overrides, "questions": len(rows),
            "summary": summarise(rows), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lme_misses")
    parser.add_argument("folder", type=Path)
    parser.add_argument("config", nargs="?", default="{}")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--embedder", default="local")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    result = run(args.folder, json.loads(args.config), args.limit, args.embedder)
    write_result(f"lme_misses_{args.tag}" if args.tag else "lme_misses", result)
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
