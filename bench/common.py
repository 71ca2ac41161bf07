"""Shared benchmark helpers: results files, percentiles, machine description."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q) - 1))]


def machine() -> dict[str, Any]:
    """What ran the benchmark."""
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "load_avg": os.getloadavg()}


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus when and where) to ``bench/results/<name>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    body = {"benchmark": name, "at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
            **payload}
    path.write_text(json.dumps(body, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def load_cli(doc: str | None, main: Callable[..., dict[str, Any]], summary: Callable[[dict[str, Any]], str]) -> None:
    """The command line shared by the server load benches: ``--data --clients --duration --embedder``."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo/locomo_dev.json"))
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--embedder", default="local")
    args = parser.parse_args()
    print(summary(main(args.data, clients=args.clients, duration=args.duration, embedder=args.embedder)))
