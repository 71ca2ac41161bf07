"""How long PostgreSQL's re-embed switch transaction lasts, and how long vector readers wait for it.

``python -m bench.reembed_switch --data …/locomo_dev.json --size 4000 --baseline-src /tmp/base/src``: a
PostgreSQL store of ``size`` LoCoMo turns (cycled, numbered) on the distilled ``static`` embedder (256 dims) is
moved to a 384-dimensional static model (the same table through a fixed random projection: cheap to embed, so
the store's own work dominates) and back, while a reader thread runs graph-index vector queries back to back
on its own connection. Per move: the switch transaction's wall time (``kernel._switch``, from its first
statement to its commit), the ``prepare_switch`` build before it (when the code has one), and the reader's
latencies: its median before the move, and the worst query overlapping the switch. ``--baseline-src`` runs
the same measurement on another checkout's ``src`` (the code before the change) in a subprocess, in the same
run; the result pairs the two with ratios and the load average. Writes ``bench/results/
reembed_postgres_switch.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

READ = ("SELECT seq FROM cube_emb ORDER BY emb <=> (SELECT emb FROM cube_emb WHERE seq = (SELECT min(seq)"
        " FROM cube_emb)) LIMIT 10")


def _projected_model(folder: Path, dim: int) -> str:
    """A model2vec folder: the distilled static table times a fixed random (256 x dim) projection."""
    from safetensors.numpy import load_file, save_file

    from memcubed.backends.embedders.static import distilled_minilm_path

    source = distilled_minilm_path()
    table = load_file(str(source / "model.safetensors"))["embeddings"]
    projection = np.random.default_rng(16).standard_normal((table.shape[1], dim)).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": (table @ projection).astype(np.float32)}, str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_bytes((source / "tokenizer.json").read_bytes())
    config = json.loads((source / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "hidden_dim": dim}))
    return f"static:{folder}"


class _Reader:
    """Vector queries back to back on one autocommit connection; each query's (start, end)."""

    def __init__(self, dsn: str) -> None:
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)
        self.spans: list[tuple[float, float]] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                self.conn.execute(READ).fetchall()
            except Exception:  # a query failing at the swap is counted, not fatal
                self.errors += 1
            self.spans.append((start, time.perf_counter()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.conn.close()


def _timed(obj: Any, name: str, into: list[tuple[float, float]]) -> None:
    """Record the (start, end) of every call of ``obj.name`` (instrumentation of this run only)."""
    inner = getattr(obj, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            into.append((start, time.perf_counter()))

    setattr(obj, name, wrapper)


def _move(mc: Any, dsn: str, spec: str, batch: int) -> dict[str, Any]:
    switches: list[tuple[float, float]] = []
    builds: list[tuple[float, float]] = []
    _timed(mc.kernel, "_switch", switches)
    if hasattr(mc.kernel.store, "prepare_switch"):
        _timed(mc.kernel.store, "prepare_switch", builds)
    reader = _Reader(dsn)
    time.sleep(2.0)  # the reader's latency before the move
    began = time.perf_counter()
    report = mc.reembed(spec, batch=batch)
    ended = time.perf_counter()
    time.sleep(0.5)
    reader.stop()
    del mc.kernel._switch
    if builds:
        del mc.kernel.store.prepare_switch
    (s0, s1), = switches
    before = [e - s for s, e in reader.spans if e < began]
    during = [e - s for s, e in reader.spans if s < s1 and e > s0]
    return {"to": report.embedder, "cubes": report.cubes, "move_s": round(ended - began, 3),
            "switch_tx_s": round(s1 - s0, 4),
            "prepare_switch_s": round(builds[0][1] - builds[0][0], 3) if builds else None,
            "reader_p50_before_ms": round(1000 * statistics.median(before), 2),
            "reader_queries_overlapping_switch": len(during),
            "reader_worst_overlapping_switch_ms": round(1000 * max(during), 2) if during else None,
            "reader_worst_during_move_ms": round(1000 * max(e - s for s, e in reader.spans if e > began), 2),
            "reader_errors": reader.errors}


def measure(data: Path, size: int, batch: int) -> dict[str, Any]:
    """One code version: build the store, move it to the projected model and back."""
    import memcubed
    from bench.stores import store_locations
    from memcubed.datasets.locomo import load_locomo

    turns = [turn.document for conversation in load_locomo(data) for turn in conversation.turns]
    texts = [f"{turns[i % len(turns)]} ({i // len(turns) + 1})" for i in range(size)]
    with tempfile.TemporaryDirectory() as tmp, store_locations("postgres") as new:
        wide = _projected_model(Path(tmp) / "wide", 384)
        dsn = new()
        with memcubed.open(dsn, embedder="static", settings=memcubed.Settings(exact_vectors_up_to=0)) as mc:
            for start in range(0, len(texts), 500):
                mc.add_many([{"text": t} for t in texts[start:start + 500]])
            moves = [_move(mc, dsn, wide, batch), _move(mc, dsn, "static", batch)]
    return {"cubes": size, "batch": batch, "moves": moves, "load_avg_after": os.getloadavg()}


def _ratios(base: dict[str, Any], current: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for b, c in zip(base["moves"], current["moves"], strict=True):
        out.append({key: round(b[key] / c[key], 2) if b.get(key) and c.get(key) else None
                    for key in ("switch_tx_s", "reader_worst_overlapping_switch_ms", "move_s")})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo/locomo_dev.json"))
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--baseline-src", type=Path, help="the src folder of the code to compare against")
    parser.add_argument("--json-only", action="store_true", help="print one version's figures as JSON (internal)")
    args = parser.parse_args()
    if args.json_only:
        print(json.dumps(measure(args.data, args.size, args.batch)))
        return
    from bench.common import write_result

    result: dict[str, Any] = {"backend": "postgres", "load_avg_before": os.getloadavg()}
    if args.baseline_src:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(args.baseline_src), str(Path.cwd())])}
        out = subprocess.run([sys.executable, "-m", "bench.reembed_switch", "--json-only", "--data", str(args.data),
                              "--size", str(args.size), "--batch", str(args.batch)], env=env, check=True,
                             capture_output=True, text=True).stdout
        result["baseline"] = json.loads(out.strip().splitlines()[-1])
    result["current"] = measure(args.data, args.size, args.batch)
    if "baseline" in result:
        result["baseline_over_current"] = _ratios(result["baseline"], result["current"])
    write_result("reembed_postgres_switch", result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))


if __name__ == "__main__":
    main()
