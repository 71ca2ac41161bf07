"""Conversation memory on LoCoMo dev: ``remember`` every turn, then count what extraction and resolution did.

``python -m bench.remember [--base-url URL --model NAME [--api-key KEY]] [--local] [--sessions N]``

- Without a model: the turns are stored and de-duplicated (no-op count), nothing is extracted.
- With ``--base-url``/``--model`` (any OpenAI-compatible server) or ``--local`` (the packaged SmolLM2-135M,
  in process): facts are extracted per batch of turns and resolved; the
  result counts add / update / contradict / no-op, the turns whose extraction failed (kept, retried by
  an ``extract`` job, run here too), and how many facts trace back to a turn (must be all).
The result file says which model produced its numbers: ``bench/results/remember_locomo[_<label>].json``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import memcubed
from bench.common import write_result
from memcubed.datasets.locomo import Conversation, load_locomo
from memcubed.settings import Settings


def _turns(conv: Conversation, sessions: int | None) -> list[list[dict[str, Any]]]:
    """The conversation's turns as ``remember`` input, one list per session (the first ``sessions``)."""
    by_session: dict[int, list[dict[str, Any]]] = {}
    for turn in conv.turns:
        if sessions is not None and turn.session > sessions:
            break
        by_session.setdefault(turn.session, []).append(
            {"speaker": turn.speaker, "text": turn.text, "time": turn.occurred_at, "conversation_id": conv.sample_id,
             "session_id": str(turn.session), "turn_id": turn.dia_id})
    return list(by_session.values())


def run(data: Path, *, base_url: str | None, model: str | None, api_key: str | None, local: bool,
        sessions: int | None, embedder: str = "local", batch: int = 20, max_tokens: int = 1024,
        conversations_wanted: int | None = None, turns_wanted: int | None = None,
        answer_format: str = "json", only: str | None = None, slot_retries: int = 0,
        contradict: str = "off") -> dict[str, Any]:
    conversations = [c for c in load_locomo(data) if only is None or c.sample_id == only][:conversations_wanted]
    if local:
        import torch

        torch.set_num_threads(1)  # the machine is small and shared: more threads only contend
    url = base_url
    name = "smollm2-135m-instruct (packaged, in process)" if local else model
    with tempfile.TemporaryDirectory() as tmp:
        common: dict[str, Any] = {"extract_batch_turns": batch, "extract_max_tokens": max_tokens,
                                  "extract_format": answer_format, "extract_slot_retries": slot_retries,
                                  "resolve_contradict": contradict}
        settings = Settings(**common)
        if local:  # the packaged model in process: no HTTP timeout on a slow CPU
            settings = Settings(extractor="local", **common)
        elif url is not None:
            settings = Settings(models={"local": "local", "extractor": f"openai:{name}"}, model_base_url=url,
                                model_api_key=api_key, extractor="extractor", **common)
        counts: Counter[str] = Counter()
        turn_actions: Counter[str] = Counter()
        failures: list[str] = []
        rejected: Counter[str] = Counter()
        outcomes: list[dict[str, Any]] = []
        began = time.perf_counter()
        with memcubed.open(Path(tmp) / "remember.db", embedder=embedder, settings=settings) as mc:
            for conv in conversations:
                left = turns_wanted
                for session in _turns(conv, sessions):
                    if left is not None:
                        session, left = session[:left], left - len(session[:left])
                    if not session:
                        break
                    result = mc.remember(session, namespace=f"locomo-{conv.sample_id}")
                    turn_actions.update(t.action for t in result.turns)
                    counts.update({k: v for k, v in result.counts.items()})
                    rejected.update(f.reason or "" for f in result.facts if f.action == "rejected")
                    outcomes += [{"action": f.action, "statement": f.statement, "target": f.target,
                                  "sources": f.sources, "reason": f.reason} for f in result.facts]
                    if result.retry_job is not None:
                        failures.append(result.reason or "")
            retried = mc.run_jobs()  # the extract jobs of failed batches, until they succeed or give up
            for job in retried:
                if job.result is not None:
                    counts.update({f"retry_{k}": v for k, v in job.result["counts"].items()})
            facts = mc.list_cubes(namespace=f"locomo-{conversations[0].sample_id}", filters={"tags": ["fact"]},
                                  limit=1000)
            untraced = sum(1 for f in facts if not f.derived_from)
            said = {c.id: c.text for c in mc.list_cubes(namespace=f"locomo-{conversations[0].sample_id}",
                                                         filters={"tags": ["turn"]}, limit=1000)}
            known = {f.id: f.text for f in mc.list_cubes(namespace=f"locomo-{conversations[0].sample_id}",
                                                          filters={"tags": ["fact"], "states": ["active", "archived"]},
                                                          limit=1000)}
            for outcome in outcomes:  # for reading by hand: each fact next to the turn it came from
                outcome["turns"] = [said.get(s) for s in outcome.pop("sources")]
                if outcome["target"]:
                    outcome["target_text"] = known.get(outcome["target"])
        seconds = time.perf_counter() - began
    return {"model": name or "none (no extractor configured)", "base_url": "local" if local else url,
            "conversations": len(conversations), "sessions_per_conversation": sessions or "all",
            "turns_per_conversation": turns_wanted or "all", "batch_turns": batch, "max_tokens": max_tokens,
            "extract_format": answer_format, "slot_retries": slot_retries, "resolve_contradict": contradict,
            "turns": dict(turn_actions),
            "facts": dict(counts), "failed_batches": len(failures), "failure_reasons": failures[:10],
            "retry_jobs": [{"state": j.state.value, "error": (j.error or {}).get("message")} for j in retried][:20],
            "untraced_facts_in_first_conversation": untraced, "seconds": round(seconds, 1),
            "seconds_per_turn": round(seconds / max(1, sum(turn_actions.values())), 2),
            "rejected_reasons": dict(rejected), "outcomes": outcomes}


def main(data: Path, argv: list[str] | None = None) -> dict[str, Any]:
    """Run with the command line ``argv`` and write the result file."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default=None, help="OpenAI-compatible base URL of the extractor")
    parser.add_argument("--model", default=None, help="the extractor's model name at that URL")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--local", action="store_true", help="extract with the packaged SmolLM2-135M")
    parser.add_argument("--sessions", type=int, default=None, help="only the first N sessions of each conversation")
    parser.add_argument("--batch", type=int, default=20, help="turns per extraction request")
    parser.add_argument("--max-tokens", type=int, default=1024, help="longest extraction answer")
    parser.add_argument("--conversations", type=int, default=None, help="only the first N conversations")
    parser.add_argument("--turns", type=int, default=None, help="only the first N turns of each conversation")
    parser.add_argument("--slot-retries", type=int, default=0, help="settings.extract_slot_retries")
    parser.add_argument("--conversation", default=None, help="only the conversation of this sample id (conv-30)")
    parser.add_argument("--format", default="json", choices=("json", "lines", "slots"),
                        help="the extractor's answer format (settings.extract_format)")
    parser.add_argument("--contradict", default="off", choices=("change", "cloze", "model", "off"),
                        help="slots: settings.resolve_contradict")
    parser.add_argument("--label", default=None, help="suffix of the result file")
    args = parser.parse_args(argv)
    if (args.base_url is None) != (args.model is None):
        parser.error("--base-url and --model go together")
    result = run(data, base_url=args.base_url, model=args.model, api_key=args.api_key, local=args.local,
                 sessions=args.sessions, batch=args.batch, max_tokens=args.max_tokens,
                 conversations_wanted=args.conversations, turns_wanted=args.turns, answer_format=args.format,
                 only=args.conversation, slot_retries=args.slot_retries, contradict=args.contradict)
    write_result("remember_locomo" + (f"_{args.label}" if args.label else ""), result)
    return result


if __name__ == "__main__":
    import json

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo/locomo_dev.json"))
    known, rest = parser.parse_known_args()
    print(json.dumps(main(known.data, rest), indent=1))
