"""The int8 query encoder against fp32 queries (``embedders.quantized``): vectors, time, and paired recall.

``python -m bench.int8_query vectors [--out <json>]``: every LoCoMo question with evidence and every
LongMemEval-S question, each embedded alone by the fp32 export and its int8 copy (and by fp32 sessions with
other onnxruntime options: 1 intra-op thread, basic graph optimisation), the arms interleaved with their order
alternating; the cosine of each arm's vector to fp32's and each arm's encoder p50 / p95 ms (tokenising
excluded, the same for all arms).

``python -m bench.int8_query recall <folder> [--limit 60] [--out <json>]``: over stores built by
``bench.tune_retrieval build`` (fp32 document vectors), LoCoMo recall@10 per category and LongMemEval-S turn
recall@10 / session recall_all@5 with fp32 queries and with int8 queries, each half (even / odd questions,
``bench.misses``) separately, with the paired bootstrap interval of each difference (``bench.paired``).
Dev data only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.embed_cache import CachedEmbedder
from bench.misses import _haystacks, _means, _per_question
from bench.paired import paired_difference
from bench.tune_retrieval import LME, LOCOMO
from memcubed.backends.embedders import make_embedder
from memcubed.backends.embedders.local import TransformersEmbedder
from memcubed.backends.embedders.onnxrt import INPUTS
from memcubed.datasets.locomo import load_locomo
from memcubed.datasets.longmemeval import load_longmemeval


def _questions() -> list[str]:
    texts = [q.question for conv in load_locomo(LOCOMO) for q in conv.questions if q.evidence]
    return texts + [hay.question for hay in load_longmemeval(LME)]


def _session(path: Path, threads: int, optimisation: str) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, optimisation)
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def vectors() -> dict[str, Any]:
    """Cosine to fp32 and encoder ms per arm over the dev questions (see the module docstring)."""
    embedder = TransformersEmbedder(query_runtime="int8")
    assert embedder.query_runtime_in_use == "int8", "the int8 copy was refused or cannot be made"
    fp32, int8 = embedder._onnx, embedder._query_onnx
    assert fp32 is not None and int8 is not None
    arms = {"fp32 (2 threads, ORT_ENABLE_ALL: the default)": _session(fp32.path, 2, "ORT_ENABLE_ALL"),
            "fp32 1 thread": _session(fp32.path, 1, "ORT_ENABLE_ALL"),
            "fp32 ORT_ENABLE_BASIC": _session(fp32.path, 2, "ORT_ENABLE_BASIC"),
            "int8 (2 threads: the default)": _session(int8.path, 2, "ORT_ENABLE_ALL"),
            "int8 1 thread": _session(int8.path, 1, "ORT_ENABLE_ALL")}
    names = list(arms)
    ms: dict[str, list[float]] = {n: [] for n in names}
    rows: dict[str, list[Any]] = {n: [] for n in names}
    texts = _questions()
    for i, text in enumerate(texts):
        enc = embedder._tokenizer([text], truncation=True, max_length=embedder.max_length, return_tensors="np")
        feed = {name: np.asarray(enc[name], dtype=np.int64) for name in INPUTS}
        for name in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            rows[name].append(arms[name].run(None, feed)[0][0])
            ms[name].append(1000 * (time.perf_counter() - t0))
    reference = np.asarray(rows[names[0]])
    out: dict[str, Any] = {"questions": len(texts), "load_before": os.getloadavg(), "arms": {}}
    for name in names:
        cosine = (np.asarray(rows[name]) * reference).sum(axis=1)
        out["arms"][name] = {"p50_ms": round(statistics.median(ms[name]), 3),
                             "p95_ms": round(float(np.percentile(ms[name], 95)), 3),
                             "cosine": {q: round(float(np.percentile(cosine, q)), 5) for q in (0, 1, 5, 50)},
                             "bitwise_equal_to_default": int((np.asarray(rows[name]) == reference).all(axis=1).sum())}
    out["load_after"] = os.getloadavg()
    return out


def recall(folder: Path, limit: int) -> dict[str, Any]:
    """Paired recall of int8 vs fp32 queries per half (see the module docstring)."""
    cache = os.environ.get("MEMCUBED_BENCH_EMBED_CACHE")
    models = {}
    for runtime in ("fp32", "int8"):
        inner = make_embedder("local", query_runtime=runtime)
        assert inner is not None
        models[runtime] = CachedEmbedder(inner, Path(cache)) if cache else inner
    assert models["int8"].query_fingerprint != models["fp32"].query_fingerprint
    out: dict[str, Any] = {"load_before": os.getloadavg(), "halves": {}}
    for half in ("a", "b"):
        haystacks = _haystacks(folder, limit, half)
        runs = {runtime: _per_question(folder, {}, haystacks, half, model) for runtime, model in models.items()}
        base, other = runs["fp32"], runs["int8"]
        diffs = {f"loc {k}": paired_difference(base["locomo"][k], v) for k, v in other["locomo"].items()}
        diffs |= {f"lme {k}": paired_difference(base["lme"][k], v) for k, v in other["lme"].items()}
        out["halves"][half] = {"lme_n": len(haystacks), "fp32": _means(base), "int8": _means(other),
                               "p50_ratio": round(other["p50_s"] / base["p50_s"], 3), "diff": diffs}
        print(json.dumps({half: out["halves"][half]}), flush=True)
    out["load_after"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.int8_query")
    parser.add_argument("action", choices=("vectors", "recall"))
    parser.add_argument("folder", type=Path, nargs="?")
    parser.add_argument("--limit", type=int, default=60, help="LongMemEval haystacks")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = vectors() if args.action == "vectors" else recall(args.folder, args.limit)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
