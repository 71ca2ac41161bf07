"""Conversation memory on LongMemEval-S dev through ``remember``: recall and answers per question type.

Each question's haystack is remembered in a store of its own (sessions in date order, one ``remember`` call
per session, turns with their session's time), and the question is asked at its ``question_date``:

- turn recall@5/@10 and session recall_all@5 (every answer session among the top 5 turn hits' sessions), per
  question type, from ``search`` through the API;
- with the answer model (the packaged SmolLM2 through ``chat``, top ``k`` memories): exact and contains
  match of the answer per type (normalised), and abstention accuracy on the ``_abs`` questions (does the
  answer say the history does not tell).

``python -m bench --only remember_longmemeval [--limit N]`` (N questions, a deterministic sample stratified by
question type and abstention, the rarest strata first: every sample of 2 or more holds the 2 ``_abs`` questions
of the dev set, and 8 or more hold every type). Result:
``bench/results/remember_longmemeval.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import memcubed
from bench.answering import AnswerModel, abstains, contains, normalise, stratified
from bench.common import write_result
from bench.embed_cache import bench_embedder
from bench.retrieval_longmemeval import DATA, score
from memcubed.datasets.longmemeval import Haystack, load_longmemeval

ANSWER_K = 5


def _sessions(hay: Haystack) -> list[list[dict[str, Any]]]:
    """The haystack as ``remember`` input: one list of turns per session, sessions in date order."""
    by_session: dict[str, list[dict[str, Any]]] = {}
    for turn in sorted(hay.turns, key=lambda t: t.occurred_at):  # stable: turns keep their order in a session
        if turn.text.strip():
            by_session.setdefault(turn.session_id, []).append(
                {"speaker": turn.role, "role": turn.role, "text": turn.text, "time": turn.occurred_at,
                 "conversation_id": f"longmemeval:{hay.question_id}", "session_id": turn.session_id,
                 "turn_id": turn.ref})
    return list(by_session.values())


def _row(mc: Any, hay: Haystack, answerer: AnswerModel | None) -> dict[str, Any]:
    hits = mc.search(hay.question, namespace="lme", k=10, question_date=hay.question_date,
                     filters={"tags": ["turn"]}).hits
    metrics = score(hay, [h.cube.source.ref or "" for h in hits])
    row: dict[str, Any] = {"type": hay.question_type, "abstention": hay.abstention,
                           "recall": {k: metrics[k] for k in ("turn_r@5", "turn_r@10", "sess_all@5")}}
    if answerer is not None:
        answer = answerer.with_memory(mc, hay.question, namespace="lme", k=ANSWER_K, question_date=hay.question_date)
        answer["exact"] = normalise(answer["text"]) == normalise(hay.answer)
        answer["contains"] = contains(answer["text"], hay.answer)
        answer["abstains"] = abstains(answer["text"])
        row["answer"] = answer
    return row


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["type"]].append(row)
    groups["all"] = rows

    def pct(values: list[float]) -> float | None:
        return round(100 * statistics.fmean(values), 1) if values else None

    table: dict[str, Any] = {}
    for kind, group in sorted(groups.items()):
        entry: dict[str, Any] = {"n": len(group)}
        for key in ("turn_r@5", "turn_r@10", "sess_all@5"):
            entry[key] = pct([r["recall"][key] for r in group if r["recall"][key] is not None])
        answered = [r for r in group if "answer" in r and not r["abstention"]]
        if any("answer" in r for r in group):
            entry["answer_exact"] = pct([float(r["answer"]["exact"]) for r in answered])
            entry["answer_contains"] = pct([float(r["answer"]["contains"]) for r in answered])
            entry["abstention_acc_on_abs"] = pct([float(r["answer"]["abstains"]) for r in group
                                                  if "answer" in r and r["abstention"]])
            entry["false_abstentions"] = sum(1 for r in answered if r["answer"]["abstains"])
            entry["median_tokens_sent"] = statistics.median(r["answer"]["tokens"] for r in group if "answer" in r)
        table[kind] = entry
    return table


def run(data: Path = DATA, *, limit: int | None = None, answers: bool = True,
        embedder: str = "local", progress: Callable[[dict[str, Any]], object] | None = None) -> dict[str, Any]:
    """Remember each haystack in its own store and ask its question there (``limit`` of them, stratified by
    question type and abstention: the ``_abs`` questions are in any sample of at least 2); ``progress`` gets the
    figures so far (``complete: false``) after each question, so a run cut short still leaves them."""
    haystacks = stratified(load_longmemeval(data), limit, lambda h: (h.question_type, h.abstention))
    answerer = AnswerModel() if answers else None
    model = bench_embedder(embedder)
    rows: list[dict[str, Any]] = []
    ingest_s: list[float] = []
    for hay in haystacks:
        with tempfile.TemporaryDirectory() as tmp, memcubed.open(Path(tmp) / "lme.db", embedder=model) as mc:
            began = time.perf_counter()
            for session in _sessions(hay):
                mc.remember(session, namespace="lme", extract=False)
            ingest_s.append(time.perf_counter() - began)
            rows.append(_row(mc, hay, answerer))
            print(f"{len(rows)}: {rows[-1]}", file=sys.stderr, flush=True)
        if progress is not None and len(rows) < len(haystacks):
            progress(_report(data, rows, haystacks, answerer, embedder, model, limit, ingest_s, complete=False))
    return _report(data, rows, haystacks, answerer, embedder, model, limit, ingest_s, complete=True)


def _report(data: Path, rows: list[dict[str, Any]], haystacks: list[Haystack], answerer: AnswerModel | None,
            embedder: str, model: Any, limit: int | None, ingest_s: list[float], *, complete: bool) -> dict[str, Any]:
    return {"complete": complete, "data": str(data),
            "answer_model": answerer.name if answerer else "none (recall only)",
            "extractor": "none configured (turns only)", "embedder": embedder,
            "embedding_cache": not isinstance(model, str), "questions": len(rows), "limit": limit,
            "sample": "stratified by (question_type, abstention), rarest first",
            "question_ids": [h.question_id for h in haystacks[:len(rows)]],
            "answer_k": ANSWER_K,
            "remember_seconds_per_haystack": {"median": round(statistics.median(ingest_s), 1),
                                              "max": round(max(ingest_s), 1)} if ingest_s else {},
            "by_type": _summary(rows)}


def main(data: Path = DATA, argv: list[str] | None = None, *, limit: int | None = None) -> dict[str, Any]:
    """Run with the command line ``argv`` and write ``bench/results/remember_longmemeval.json``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=limit, help="N questions, stratified by type and abstention")
    parser.add_argument("--no-answers", action="store_true", help="recall only (no answer model)")
    args = parser.parse_args(argv or [])
    result = run(data, limit=args.limit, answers=not args.no_answers,
                 progress=lambda partial: write_result("remember_longmemeval", partial))
    write_result("remember_longmemeval", result)
    return result


if __name__ == "__main__":
    import json

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--data", type=Path, default=DATA)
    known, rest = parser.parse_known_args()
    print(json.dumps(main(known.data, rest)["by_type"], indent=1))
