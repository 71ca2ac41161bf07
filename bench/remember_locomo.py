"""Conversation memory on LoCoMo dev through ``remember``: recall of evidence and answer quality per category.

Every dev conversation is remembered in order, one ``remember`` call per session (turns with their session's
time). Then, per question category:

- evidence recall@5/@10 of turns: the share of a question's evidence turns among the top k turn hits of
  ``search`` (hybrid, through the API);
- recall@5/@10 of extracted facts, when an extractor ran: a fact hit counts for the evidence turns among its
  sources (``derived_from``);
- answer token-F1 with the packaged SmolLM2 answering (a) from memory (``chat``, top ``k`` memories),
  (b) with no memory (``chat`` with ``k=0``), (c) with the whole conversation in its prompt where it fits the
  model's window (else counted as not fitting); tokens sent per question for each. Category 5 (adversarial:
  the conversation does not say) is scored as abstention, not F1.

``python -m bench --only remember_locomo [--limit N]`` (``--limit``: N questions of each conversation,
stratified by category, the rarest first; the answers are slow on a CPU).
Result: ``bench/results/remember_locomo_answers.json`` (rewritten after each question, ``complete: false``
until the run ends).
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
from bench.answering import AnswerModel, abstains, stratified, token_f1
from bench.common import write_result
from bench.embed_cache import bench_embedder
from bench.remember import _turns
from memcubed.datasets.locomo import Conversation, Question, load_locomo

KS = (5, 10)
ANSWER_K = 5
WAYS = ("memory", "no_memory", "full_context")


def _recall(evidence: tuple[str, ...], ranked: list[set[str]]) -> dict[str, float | None]:
    """Recall@k of ``evidence`` over ranked hits, each hit the set of turn ids it covers."""
    out: dict[str, float | None] = {}
    for k in KS:
        covered = set().union(*ranked[:k]) if ranked[:k] else set()
        out[f"r@{k}"] = len(covered & set(evidence)) / len(evidence) if evidence else None
    return out


def _fact_turns(mc: Any, hits: list[Any]) -> list[set[str]]:
    """For fact hits, the dia ids of their source turns."""
    ids = [ref.id for hit in hits for ref in hit.cube.derived_from]
    sources = mc.kernel.store.load_cubes(list(dict.fromkeys(ids)))  # a bench lookup, not a use
    return [{sources[r.id].source.ref or "" for r in hit.cube.derived_from if r.id in sources} for hit in hits]


def _question_row(mc: Any, conv: Conversation, question: Question, answerer: AnswerModel | None,
                  history: list[str], extracted: bool) -> dict[str, Any]:
    namespace = f"locomo-{conv.sample_id}"
    turns = mc.search(question.question, namespace=namespace, k=max(KS), filters={"tags": ["turn"]}).hits
    row: dict[str, Any] = {"category": question.category,
                           "turns": _recall(question.evidence, [{h.cube.source.ref or ""} for h in turns])}
    if extracted:
        facts = mc.search(question.question, namespace=namespace, k=max(KS), filters={"tags": ["fact"]}).hits
        row["facts"] = _recall(question.evidence, _fact_turns(mc, facts))
    if answerer is None:
        return row
    gold = question.answer or ""
    answers = {"memory": answerer.with_memory(mc, question.question, namespace=namespace, k=ANSWER_K),
               "no_memory": answerer.with_memory(mc, question.question, namespace=namespace, k=0),
               "full_context": answerer.full_context(history, question.question)}
    for answer in answers.values():
        if "text" in answer:
            answer["score"] = float(abstains(answer["text"])) if question.category == 5 else \
                token_f1(answer["text"], gold)
    row["answers"] = answers
    return row


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_cat: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_cat[str(row["category"])].append(row)
    by_cat["all"] = rows

    def mean(values: list[float]) -> float | None:
        return round(100 * statistics.fmean(values), 1) if values else None

    table: dict[str, Any] = {}
    for cat, group in sorted(by_cat.items()):
        entry: dict[str, Any] = {"n": len(group)}
        for part in ("turns", "facts"):
            for k in KS:
                values = [r[part][f"r@{k}"] for r in group if part in r and r[part][f"r@{k}"] is not None]
                if values or part == "turns":
                    entry[f"{part}_recall@{k}"] = mean(values)
        for way in WAYS if any("answers" in r for r in group) else ():
            answered = [r["answers"][way] for r in group if "score" in r["answers"][way]]
            scored = [a for r in group if "score" in (a := r["answers"][way]) and r["category"] != 5]
            entry[way] = {"answered": len(answered), "not_fitting": len(group) - len(answered),
                          "token_f1": mean([a["score"] for a in scored]) if cat != "5" else None,
                          "abstention_acc": mean([a["score"] for a in answered]) if cat == "5" else None,
                          "median_tokens_sent": statistics.median(r["answers"][way]["tokens"] for r in group)}
            if cat == "all":
                entry[way]["token_f1_categories_1_4"] = entry[way].pop("token_f1")
                entry[way].pop("abstention_acc")
        table[cat] = entry
    return table


def run(data: Path, *, limit: int | None = None, answers: bool = True, embedder: str = "local",
        base_url: str | None = None, model_name: str | None = None, answer_format: str = "json",
        progress: Callable[[dict[str, Any]], object] | None = None) -> dict[str, Any]:
    """Remember every conversation of ``data`` (facts extracted by ``model_name`` at ``base_url`` when given),
    then ask its questions (``limit`` of each); ``progress`` gets the figures so far (``complete: false``)
    after each question, so a run cut short still leaves them."""
    extractor = f"{model_name} at {base_url}" if base_url and model_name else None
    conversations = load_locomo(data)
    answerer = AnswerModel() if answers else None
    model = bench_embedder(embedder)
    rows: list[dict[str, Any]] = []
    ingest: dict[str, float] = {}
    turn_actions: dict[str, int] = defaultdict(int)
    settings = memcubed.Settings()
    if extractor:
        settings = memcubed.Settings(models={"local": "local", "extractor": f"openai:{model_name}"},
                                     model_base_url=base_url, extractor="extractor", extract_format=answer_format)

    def report(*, complete: bool) -> dict[str, Any]:
        return {"complete": complete, "answer_model": answerer.name if answerer else "none (recall only)",
                "extractor": extractor or "none configured (no facts: fact recall not measured)",
                "extract_format": answer_format if extractor else None,
                "embedder": embedder, "embedding_cache": not isinstance(model, str),
                "conversations": len(conversations), "questions_per_conversation": limit or "all",
                "questions": len(rows), "answer_k": ANSWER_K,
                "max_new_tokens": answerer.max_new_tokens if answerer else 0,
                "model_window_tokens": answerer.window if answerer else None,
                "turns": dict(turn_actions), "remember_seconds_per_conversation": ingest,
                "by_category": _summary(rows)}

    with tempfile.TemporaryDirectory() as tmp, memcubed.open(Path(tmp) / "remember.db", embedder=model,
                                                              settings=settings) as mc:
        asked: list[list[tuple[Conversation, Question, list[str]]]] = []
        for conv in conversations:
            began = time.perf_counter()
            for session in _turns(conv, None):
                result = mc.remember(session, namespace=f"locomo-{conv.sample_id}", extract=extractor is not None)
                for turn in result.turns:
                    turn_actions[turn.action] += 1
            if extractor:
                mc.run_jobs()  # the retries of failed extractions, before any question is asked
            ingest[conv.sample_id] = round(time.perf_counter() - began, 1)
            history = [f"[{t.occurred_at:%Y-%m-%d}] {t.speaker}: {t.text}" if t.occurred_at else
                       f"{t.speaker}: {t.text}" for t in conv.turns]
            asked.append([(conv, q, history) for q in stratified(conv.questions, limit, lambda q: q.category)])
        # Conversation after conversation, round by round: a run cut short has asked each of them alike.
        for conv, question, history in (row[r] for r in range(max(map(len, asked), default=0))
                                        for row in asked if r < len(row)):
            rows.append(_question_row(mc, conv, question, answerer, history, extractor is not None))
            print(f"{conv.sample_id} {len(rows)}: {rows[-1]}", file=sys.stderr, flush=True)
            if progress is not None:
                progress(report(complete=False))
    return report(complete=True)



def main(data: Path, argv: list[str] | None = None, *, limit: int | None = None) -> dict[str, Any]:
    """Run with the command line ``argv`` and write ``bench/results/remember_locomo_answers.json``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=limit,
                        help="N questions of each conversation, stratified by category")
    parser.add_argument("--no-answers", action="store_true", help="recall only (no answer model)")
    parser.add_argument("--base-url", default=None, help="OpenAI-compatible base URL of an extractor")
    parser.add_argument("--model", default=None, help="the extractor's model name at that URL")
    parser.add_argument("--format", default="json", choices=("json", "lines"), help="its answer format")
    args = parser.parse_args(argv or [])
    if (args.base_url is None) != (args.model is None):
        parser.error("--base-url and --model go together")
    result = run(data, limit=args.limit, answers=not args.no_answers, base_url=args.base_url,
                 model_name=args.model, answer_format=args.format,
                 progress=lambda partial: write_result("remember_locomo_answers", partial))
    write_result("remember_locomo_answers", result)
    return result


if __name__ == "__main__":
    import json

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo/locomo_dev.json"))
    known, rest = parser.parse_known_args()
    print(json.dumps(main(known.data, rest)["by_category"], indent=1))
