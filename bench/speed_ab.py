"""Same-run A/B of the query path: hybrid search at 10k and 100k cubes with the local MiniLM through torch
(the path before onnxruntime) and through its ONNX export, queries alternating between the two.

Under a shared, loaded host wall times move with the load, so each arm is measured on the same questions in
interleaved order (which arm goes first alternates too), and the JSON carries the ratios, the CPU seconds per
search and the load average. ``python -m bench --only speed_ab``; ``run(data, stores={...})`` reuses stores
built by ``bench.speed.fill``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import memcubed
from bench.common import percentile, write_result
from bench.speed import corpus, fill
from memcubed.backends.embedders.local import TransformersEmbedder
from memcubed.backends.embedders.onnxrt import onnxruntime_available
from memcubed.backends.embedders.querycache import QUERY_CACHE

SIZES = (10_000, 100_000)
ARMS = {"torch": ("torch", None), "torch_1thread": ("torch", 1), "onnx": ("onnx", None)}
"""Arm → (runtime, torch threads during its searches; None: torch's default, the path before onnxruntime)."""


def _summary(rows: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in ("embed_ms", "index_ms", "total_ms", "cpu_ms"):
        values = [r[key] for r in rows]
        out[f"{key}_p50"] = round(percentile(values, 50), 2)
        out[f"{key}_p95"] = round(percentile(values, 95), 2)
    return out


def ab(path: Path, questions: list[str], embedders: dict[str, TransformersEmbedder]) -> dict[str, Any]:
    """Alternate hybrid searches of ``questions`` between the arms on the store at ``path``; every search
    embeds (the query-vector cache is emptied before each)."""
    import torch

    default_threads = torch.get_num_threads()
    load_before = os.getloadavg()
    rows: dict[str, list[dict[str, float]]] = {arm: [] for arm in embedders}
    clients = {arm: memcubed.open(path, embedder=e) for arm, e in embedders.items()}
    try:
        users = {arm: c.as_principal("bench") for arm, c in clients.items()}
        for arm, client in clients.items():
            client.kernel.store.warm("bench")
            users[arm].search(questions[0], namespace="bench", k=10)  # first search pays one-time loads
        for i, question in enumerate(questions):
            order = list(embedders) if i % 2 == 0 else list(reversed(embedders))
            for arm in order:
                QUERY_CACHE.clear()
                threads = ARMS[arm][1] or default_threads
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
                cpu = time.process_time()
                result = users[arm].search(question, namespace="bench", k=10, mode="hybrid")
                rows[arm].append({"embed_ms": result.embed_ms, "index_ms": result.index_ms,
                                  "total_ms": result.total_ms, "cpu_ms": (time.process_time() - cpu) * 1000})
    finally:
        torch.set_num_threads(default_threads)
        for client in clients.values():
            client.close()
    out: dict[str, Any] = {arm: _summary(r) for arm, r in rows.items()}
    for old in ("torch", "torch_1thread"):
        out[f"onnx_over_{old}"] = {key: round(out["onnx"][key] / out[old][key], 3) for key in
                                   ("embed_ms_p50", "embed_ms_p95", "total_ms_p50", "total_ms_p95", "cpu_ms_p50")
                                   if out[old][key]}
    out["load_average"] = {"before": [round(x, 1) for x in load_before],
                           "after": [round(x, 1) for x in os.getloadavg()]}
    out["queries_per_arm"] = len(questions)
    return out


def run(data: Path, sizes: tuple[int, ...] = SIZES, stores: dict[int, Path] | None = None,
        queries: int = 200) -> dict[str, Any]:
    """The A/B at each size, on ``stores`` (size → path of a store built by ``bench.speed.fill``) or on
    stores built here."""
    if not onnxruntime_available():
        return {"skipped": "onnxruntime is not installed (pip install memcubed[onnx])"}
    texts, questions = corpus(data)
    questions = questions[:queries]
    embedders = {arm: TransformersEmbedder(runtime=runtime) for arm, (runtime, _) in ARMS.items()}
    for embedder in embedders.values():
        embedder.embed(["warm up"])  # the onnx arm exports on its first use
    out: dict[str, Any] = {"runtimes": {arm: e.runtime_in_use for arm, e in embedders.items()},
                           "torch_threads": _torch_threads(), "sizes": {}}
    if stores is not None:
        for size in sizes:
            out["sizes"][str(size)] = ab(stores[size], questions, embedders)
        return out
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ab.db"
        base = embedders["onnx"].embed(texts)
        with memcubed.open(path, embedder=embedders["onnx"]) as admin:
            admin.create_principal("bench")
            mc = admin.as_principal("bench")
            mc.add_many([{"text": t, "namespace": "bench"} for t in texts[:500]])
            count = 500
            for size in sizes:
                fill(mc, texts, base, np.random.default_rng(0), count, size)
                count = size
                out["sizes"][str(size)] = ab(path, questions, embedders)
    return out


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def main(data: Path) -> dict[str, Any]:
    """Run and write ``bench/results/speed_ab.json``."""
    result = run(data)
    write_result("speed_ab", result)
    return result
