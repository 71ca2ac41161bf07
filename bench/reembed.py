"""What moving a store to another embedder costs: seconds (wall and CPU) per 1,000 cubes re-embedded.

``python -m bench.reembed --data …/locomo_dev.json --size 2000 [--backend sqlite|postgres]``: a store of the
first ``size`` LoCoMo turns on the distilled ``static`` embedder is moved to the packaged MiniLM (``local``,
384 dims: the model dominates), then back to ``static`` (the store's own work dominates). Each figure is paired,
in the same run, with the bare model embedding the same texts in the same batches, so the ratio (re-embed /
model alone) is the operation's overhead whatever the machine's load. Writes ``bench/results/reembed[_postgres]
.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import memcubed
from bench.common import write_result
from bench.stores import store_locations
from memcubed.backends.base import Embedder
from memcubed.backends.embedders import make_embedder
from memcubed.datasets.locomo import load_locomo


def _turns(data: Path, size: int) -> list[str]:
    texts = [turn.document for conversation in load_locomo(data) for turn in conversation.turns]
    return texts[:size]


def _model_alone(model: Embedder, texts: list[str], batch: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), batch):
        model.embed(texts[start:start + batch])
    return time.perf_counter() - wall, time.process_time() - cpu


def _move(mc: memcubed.Memcubed, spec: str, texts: list[str], batch: int) -> dict[str, Any]:
    model = make_embedder(spec)
    assert model is not None
    model.embed(["warm up"])
    alone_wall, alone_cpu = _model_alone(model, texts, batch)
    wall, cpu = time.perf_counter(), time.process_time()
    report = mc.reembed(spec, batch=batch)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert report.switched and report.cubes == len(texts), report
    per_k = 1000 / len(texts)
    return {"to": report.embedder, "cubes": report.cubes, "s_per_1k": round(wall * per_k, 3),
            "cpu_s_per_1k": round(cpu * per_k, 3), "model_alone_s_per_1k": round(alone_wall * per_k, 3),
            "model_alone_cpu_s_per_1k": round(alone_cpu * per_k, 3),
            "overhead_cpu_s_per_1k": round((cpu - alone_cpu) * per_k, 3),
            "ratio_cpu": round(cpu / alone_cpu, 3) if alone_cpu else None}


def run(data: Path, *, size: int = 2000, batch: int = 256, backend: str = "sqlite") -> dict[str, Any]:
    """Build a ``static`` store of ``size`` turns, move it to ``local`` and back; the figures of both moves."""
    texts = _turns(data, size)
    with store_locations(backend) as new, memcubed.open(new(), embedder="static") as mc:
        for start in range(0, len(texts), 500):
            mc.add_many([{"text": t} for t in texts[start:start + 500]])
        moves = [_move(mc, "local", texts, batch), _move(mc, "static", texts, batch)]
        assert mc.search("what did she paint", mode="vector", k=3).hits
    return {"backend": backend, "cubes": len(texts), "batch": batch, "moves": moves}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo/locomo_dev.json"))
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--backend", default="sqlite", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    result = run(args.data, size=args.size, batch=args.batch, backend=args.backend)
    write_result("reembed" if args.backend == "sqlite" else f"reembed_{args.backend}", result)
    for move in result["moves"]:
        print(move)


if __name__ == "__main__":
    main()
