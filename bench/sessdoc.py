"""Where each answer session of a LongMemEval-S counting or comparing question stands, by turn and by session.

``python -m bench.sessdoc <folder> ['<json>'] [--half a|b]`` asks each routed (``session``) question of the stores
``python -m bench.tune_retrieval build <folder>`` wrote with ``TextConfig(**json)`` at k = 100 and prints, per
answer session, the rank of its best turn and the rank of its session (``session.sessions_of`` runs, as the
session stage groups them) under each session-level score of ``session.session_scores``, so that a score that
would bring a missing session into the first five shows. Dev data only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import memcubed
from bench.embed_cache import bench_embedder
from bench.misses import _in_half
from bench.tune_retrieval import LME
from memcubed.datasets.longmemeval import load_longmemeval
from memcubed.engines.text.config import TextConfig
from memcubed.engines.text.route import route
from memcubed.engines.text.session import SESSION_SCORES, session_scores, sessions_of


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sessdoc")
    parser.add_argument("folder", type=Path)
    parser.add_argument("config", nargs="?", default="{}")
    parser.add_argument("--half", choices=("a", "b"))
    parser.add_argument("--depth", type=int, default=100)
    args = parser.parse_args()
    config = TextConfig(**json.loads(args.config))
    model = bench_embedder("local")
    rows: list[dict[str, Any]] = []
    for i, hay in enumerate(load_longmemeval(LME)):
        path = args.folder / "lme" / f"{i:03d}.db"
        if not _in_half(i, args.half) or not path.exists() or "session" not in route(hay.question).reasons:
            continue
        with memcubed.open(path, embedder=model) as mc:
            mc.kernel.text.config = config
            hits = mc.search(hay.question, namespace="lme", k=args.depth, question_date=hay.question_date).hits
        refs = [h.cube.source.ref or "" for h in hits]
        groups = sessions_of(hits, config.exchange_gap_s)
        order: dict[str, list[int]] = {}
        for how in SESSION_SCORES:
            scores = session_scores(hits, groups, how)
            ranked = sorted(scores, key=lambda s: -scores[s])
            order[how] = [ranked.index(g) + 1 for g in groups]
        row: dict[str, Any] = {"i": i, "type": hay.question_type, "n_sessions": len(hay.answer_sessions),
                               "q": hay.question[:70], "gold": {}}
        for sid in sorted(hay.answer_sessions):
            at = next((r for r, ref in enumerate(refs) if ref.rsplit("#", 1)[0] == sid), None)
            row["gold"][sid[-8:]] = (None if at is None else
                                     {"turn": at + 1, **{how: order[how][at] for how in SESSION_SCORES}})
        print(json.dumps(row))
        rows.append(row)
    _summary(rows)


def _summary(rows: list[dict[str, Any]]) -> None:
    """Per session-level score and m: the questions whose answer sessions all rank within the first m sessions
    (what ``session_cover`` m could bring into the first m places), beside the best turns' own ranks."""
    for m in (3, 4, 5, 6):
        line = {how: sum(all(g is not None and g[how] <= m for g in r["gold"].values()) for r in rows)
                for how in ("turn", *SESSION_SCORES)}
        print(json.dumps({"within": m, "of": len(rows), **line}))


if __name__ == "__main__":
    main()
