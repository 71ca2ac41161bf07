"""Activation memory on the packaged SmolLM2-135M (fp32, CPU): re-reading a memory text vs injecting its KV.

For memory texts of about 256, 1024 and 4096 tokens (LoCoMo turns, trimmed by the tokenizer) it
measures, side by side in one run:

* time to first token and total time for ``NEW_TOKENS`` greedy tokens with the text re-read in the
  prompt vs with its KV injected, the KV loaded from the on-disk blob store before every run (load
  timed apart; the blob is in the page cache after the first write) — medians of ``RUNS``;
* whether the greedy outputs are identical, and the next-token logit deviation of injection;
* bytes of KV per token stored as fp32 and as bf16, and bf16's next-token logit deviation from fp32;
* for two cubes: the approximate (independently computed, concatenated) prefix vs the exact one.

Re-reading uses the project's own path (``LocalTransformersLM.greedy``), which computes logits for
every prompt position; compile does too.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import write_result
from memcubed.backends.blobs import FileBlobStore
from memcubed.backends.models import LocalTransformersLM
from memcubed.datasets.locomo import Conversation, load_locomo
from memcubed.engines.kvcache import CubeText, KVCacheConfig, KVCacheEngine, MemorySegmentIndex
from memcubed.engines.scheduler.tree import common_prefix

SIZES = (256, 1024, 4096)
RUNS = 3
NEW_TOKENS = 16
PAIR_TOKENS = 512  # each of the two cubes in the approximate-mode comparison
PAIR_QUERIES = 6


def _memory_text(lm: LocalTransformersLM, conv: Conversation, tokens: int, skip: int = 0) -> tuple[str, set[str]]:
    """Turns of ``conv`` (from turn ``skip``) as ``speaker: text`` lines, cut to ``tokens`` tokens."""
    lines: list[str] = []
    used: set[str] = set()
    for turn in conv.turns[skip:]:
        lines.append(turn.document)
        used.add(turn.dia_id)
        if len(lm.encode("\n".join(lines))) >= tokens:
            break
    ids = lm.encode("\n".join(lines))
    if len(ids) < tokens:
        raise ValueError(f"conversation {conv.sample_id} has fewer than {tokens} tokens of turns")
    return lm.decode(ids[:tokens]), used


def _query(conv: Conversation, used: set[str], nth: int = 0) -> str:
    """The ``nth`` question whose evidence lies in ``used`` turns (any question if too few do)."""
    inside = [q for q in conv.questions if q.evidence and set(q.evidence) <= used]
    pool = inside if len(inside) > nth else conv.questions
    return f"\nQuestion: {pool[nth % len(pool)].question}\nAnswer:"


def _max_abs(a: Any, b: Any) -> float:
    return float((a - b).abs().max().item())


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def _size(lm: LocalTransformersLM, engine: KVCacheEngine, half: KVCacheEngine, blobs: FileBlobStore,
          conv: Conversation, target: int) -> dict[str, Any]:
    text, used = _memory_text(lm, conv, target)
    query = _query(conv, used)
    started = time.perf_counter()
    [segment] = engine.compile([text])
    compile_s = time.perf_counter() - started
    data = engine.dumps(segment)
    digest = blobs.put(data)
    tokens = segment.meta.token_count
    reread_ids = [*segment.token_ids, *lm.encode(query)]

    rows: dict[str, list[float]] = {k: [] for k in ("reread_ttft", "reread_total", "load", "inject_ttft",
                                                    "inject_total")}
    reread_out: list[list[int]] = []
    inject_out: list[list[int]] = []
    for _ in range(RUNS):
        reread = lm.greedy(reread_ids, max_new_tokens=NEW_TOKENS)
        rows["reread_ttft"].append(reread.ttft_s)
        rows["reread_total"].append(reread.total_s)
        reread_out.append(reread.token_ids)
        started = time.perf_counter()
        prefix = engine.load([digest], blobs)
        rows["load"].append(time.perf_counter() - started)
        injected = engine.generate(query, prefix, max_new_tokens=NEW_TOKENS)
        rows["inject_ttft"].append(injected.ttft_s)
        rows["inject_total"].append(injected.total_s)
        inject_out.append(injected.token_ids)

    # Logits: injected fp32 vs one joint pass; bf16-stored vs fp32-stored injection.
    reference, _ = lm.forward(reread_ids)
    fp32_logits = engine.next_token_logits(query, prefix)
    [half_segment] = half.compile([text])
    half_data = half.dumps(half_segment)
    half_prefix = half.load([blobs.put(half_data)], blobs)
    half_gen = half.generate(query, half_prefix, max_new_tokens=NEW_TOKENS)

    med = {k: _median(v) for k, v in rows.items()}
    return {
        "tokens": tokens,
        "query": query.strip(),
        "query_tokens": len(reread_ids) - tokens,
        "runs": RUNS,
        "compile_s": round(compile_s, 3),
        "reread_ttft_s": med["reread_ttft"],
        "inject_ttft_s": med["inject_ttft"],
        "load_s": med["load"],
        "inject_ttft_with_load_s": _median([a + b for a, b in zip(rows["load"], rows["inject_ttft"], strict=True)]),
        "ttft_speedup": round(med["reread_ttft"] / med["inject_ttft"], 1),
        "ttft_speedup_with_load": round(med["reread_ttft"] / _median(
            [a + b for a, b in zip(rows["load"], rows["inject_ttft"], strict=True)]), 1),
        "reread_total_s": med["reread_total"],
        "inject_total_s": med["inject_total"],
        "inject_total_with_load_s": _median([a + b for a, b in zip(rows["load"], rows["inject_total"],
                                                                   strict=True)]),
        "new_tokens": len(inject_out[0]),
        "greedy_identical": all(r == inject_out[0] for r in [*reread_out, *inject_out]),
        "output": lm.decode(inject_out[0]),
        "inject_vs_reread_max_logit_diff": _max_abs(fp32_logits, reference),
        "fp32_blob_bytes": len(data),
        "bf16_blob_bytes": len(half_data),
        "fp32_bytes_per_token": round(len(data) / tokens, 1),
        "bf16_bytes_per_token": round(len(half_data) / tokens, 1),
        "bf16_vs_fp32_max_logit_diff": _max_abs(half.next_token_logits(query, half_prefix), fp32_logits),
        "bf16_greedy_identical": half_gen.token_ids == inject_out[0],
        "samples_s": {k: [round(x, 4) for x in v] for k, v in rows.items()},
    }


def _pair(lm: LocalTransformersLM, engine: KVCacheEngine, blobs: FileBlobStore,
          convs: list[Conversation]) -> dict[str, Any]:
    """Two cubes from two conversations: approximate (concatenated) vs exact prefix, over a few questions."""
    first, second = convs[0], convs[1 % len(convs)]
    text_a, used_a = _memory_text(lm, first, PAIR_TOKENS)
    text_b, used_b = _memory_text(lm, second, PAIR_TOKENS, skip=0 if second is not first else len(used_a))
    cubes = [CubeText("locomo-a", 1, text_a), CubeText("locomo-b", 1, text_b)]
    index = MemorySegmentIndex()
    exact, _ = engine.build(cubes, blobs=blobs, index=index)
    approx, _ = engine.build(cubes, blobs=blobs, index=index, mode="approximate")
    queries = [_query(c, u, i) for i in range(PAIR_QUERIES // 2) for c, u in ((first, used_a), (second, used_b))]
    per_query = []
    for query in queries:
        exact_logits = engine.next_token_logits(query, exact)
        joint, _ = lm.forward(engine.query_ids(exact, query))
        approx_logits = engine.next_token_logits(query, approx)
        exact_gen = engine.generate(query, exact, max_new_tokens=NEW_TOKENS)
        approx_gen = engine.generate(query, approx, max_new_tokens=NEW_TOKENS)
        per_query.append({
            "query": query.strip(),
            "exact_vs_joint_max_logit_diff": _max_abs(exact_logits, joint),
            "approx_vs_exact_max_logit_diff": _max_abs(approx_logits, exact_logits),
            "first_token_agrees": int(approx_logits.argmax()) == int(exact_logits.argmax()),
            "greedy_identical": approx_gen.token_ids == exact_gen.token_ids,
            "common_prefix_tokens": common_prefix(approx_gen.token_ids, exact_gen.token_ids),
            "exact_output": lm.decode(exact_gen.token_ids),
            "approx_output": lm.decode(approx_gen.token_ids),
        })
    diffs = [q["approx_vs_exact_max_logit_diff"] for q in per_query]
    return {
        "cube_tokens": [s.token_count for s in exact.segments],
        "queries": len(per_query),
        "approx_vs_exact_max_logit_diff_median": round(statistics.median(diffs), 4),
        "approx_vs_exact_max_logit_diff_max": round(max(diffs), 4),
        "exact_vs_joint_max_logit_diff_max": max(q["exact_vs_joint_max_logit_diff"] for q in per_query),
        "first_token_agreement": round(sum(q["first_token_agrees"] for q in per_query) / len(per_query), 3),
        "greedy_agreement": round(sum(q["greedy_identical"] for q in per_query) / len(per_query), 3),
        "per_query": per_query,
    }


def run(data: Path, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    """Measure re-reading vs injection at each size, bf16 storage, and approximate vs exact for two cubes."""
    import torch

    convs = load_locomo(data)
    lm = LocalTransformersLM()  # packaged SmolLM2-135M-Instruct, fp32
    engine = KVCacheEngine(lm)
    half = KVCacheEngine(lm, KVCacheConfig(storage_dtype="bfloat16"))
    lm.greedy(lm.encode("Warm up the model."), max_new_tokens=2)
    config = lm.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    out: dict[str, Any] = {
        "model": lm.name, "dtype": str(lm.dtype).removeprefix("torch."), "device": "cpu",
        "torch_threads": torch.get_num_threads(), "data": str(data), "conversation": convs[0].sample_id,
        "kv_tensor_bytes_per_token": {"float32": 2 * config.num_hidden_layers * config.num_key_value_heads
                                      * head_dim * 4,
                                      "bfloat16": 2 * config.num_hidden_layers * config.num_key_value_heads
                                      * head_dim * 2},
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="kvbench-") as tmp:
        blobs = FileBlobStore(Path(tmp) / "blobs")
        for target in sizes:
            out["sizes"][str(target)] = _size(lm, engine, half, blobs, convs[0], target)
        out["two_cubes"] = _pair(lm, engine, blobs, convs)
    return out


def summary(result: dict[str, Any]) -> str:
    """A compact table of the main numbers."""
    lines = [f"{'tokens':>6} {'reread ttft':>11} {'inject ttft':>11} {'load':>7} {'speedup':>8} "
             f"{'(w/ load)':>9} {'reread tot':>10} {'inject tot':>10} {'same':>5} {'B/tok fp32':>10} "
             f"{'bf16':>7} {'bf16 dlogit':>11}"]
    for row in result["sizes"].values():
        lines.append(f"{row['tokens']:>6} {row['reread_ttft_s']:>10.3f}s {row['inject_ttft_s']:>10.3f}s "
                     f"{row['load_s']:>6.3f}s {row['ttft_speedup']:>7.1f}x {row['ttft_speedup_with_load']:>8.1f}x "
                     f"{row['reread_total_s']:>9.3f}s {row['inject_total_s']:>9.3f}s "
                     f"{'yes' if row['greedy_identical'] else 'NO':>5} {row['fp32_bytes_per_token']:>10.0f} "
                     f"{row['bf16_bytes_per_token']:>7.0f} {row['bf16_vs_fp32_max_logit_diff']:>11.4f}")
    pair = result["two_cubes"]
    lines.append(f"two cubes {pair['cube_tokens']}: approximate vs exact max |dlogit| median "
                 f"{pair['approx_vs_exact_max_logit_diff_median']}, max {pair['approx_vs_exact_max_logit_diff_max']}; "
                 f"first token agrees {pair['first_token_agreement']:.0%}, greedy identical "
                 f"{pair['greedy_agreement']:.0%} of {pair['queries']} questions; "
                 f"exact vs joint max |dlogit| {pair['exact_vs_joint_max_logit_diff_max']:.2g}")
    return "\n".join(lines)


def main(data: Path) -> dict[str, Any]:
    """Run and write ``bench/results/kvcache.json``."""
    result = run(data)
    write_result("kvcache", result)
    return result
