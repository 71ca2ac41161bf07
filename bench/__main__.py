"""``python -m bench [--data PATH] [--only NAME ...] [--limit N] [--backend sqlite|postgres]``: run the benchmarks
of :data:`BENCHES` (all by default), each writing its JSON to ``bench/results/`` (``make fuzz`` runs ``bench.fuzz``
on its own)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from bench import (
    backends,
    bundle,
    chat_replay,
    hostile,
    kvcache,
    load,
    lora,
    readwrite,
    remember_locomo,
    remember_longmemeval,
    retrieval,
    retrieval_longmemeval,
    scheduler,
    speed,
    speed_ab,
)
from bench.stores import BACKENDS

Run = Callable[[argparse.Namespace], str]
"""Runs one benchmark with the command line's arguments and returns the summary to print."""

BENCHES: dict[str, Run] = {
    "retrieval": lambda a: json.dumps(retrieval.main(a.data, backend=a.backend)["recall"], indent=1),
    "retrieval_longmemeval": lambda a: json.dumps(
        retrieval_longmemeval.main(limit=a.limit, backend=a.backend)["recall"]["hybrid"], indent=1),
    "speed": lambda a: json.dumps(speed.main(a.data, a.embedder), indent=1),
    # the query path through torch and through onnxruntime, alternating in one run (needs onnxruntime)
    "speed_ab": lambda a: json.dumps(speed_ab.main(a.data), indent=1),
    "kvcache": lambda a: kvcache.summary(kvcache.main(a.data)),
    "lora": lambda a: lora.summary(lora.main(a.data)),
    "backends": lambda a: json.dumps({k: v for k, v in backends.main(a.data).items()
                                      if k in ("size", "ratios_postgres_over_sqlite")}, indent=1),
    "load": lambda a: load.summary(load.main(a.data)),
    "readwrite": lambda a: readwrite.summary(readwrite.main(a.data)),
    "hostile": lambda a: hostile.summary(hostile.main(a.data)),
    "scheduler": lambda a: scheduler.summary(scheduler.main(a.data)),
    "bundle": lambda a: json.dumps(bundle.main(), indent=1),
    "chat_replay": lambda a: chat_replay.summary(chat_replay.main(a.data, limit=a.limit)),
    # conversation memory through remember (issue 15): recall, answers with/without memory, per category/type
    "remember_locomo": lambda a: json.dumps(remember_locomo.main(a.data, limit=a.limit)["by_category"]["all"],
                                            indent=1),
    "remember_longmemeval": lambda a: json.dumps(remember_longmemeval.main(limit=a.limit)["by_type"]["all"],
                                                 indent=1),
}
"""Every benchmark ``make bench`` runs, in order, by the name ``--only`` takes."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo/locomo_dev.json"))
    parser.add_argument("--only", nargs="+", default=None, choices=sorted(BENCHES), help="run only these")
    parser.add_argument("--limit", type=int, default=None, help="benchmarks that ask questions: only the first N")
    parser.add_argument("--embedder", default="local", help="the embedder spec of the speed benchmark")
    parser.add_argument("--backend", default="sqlite", choices=BACKENDS,
                        help="the store of the retrieval benchmarks (postgres: a private server for the run)")
    args = parser.parse_args()
    for name, run in BENCHES.items():
        if args.only is None or name in args.only:
            print(f"== {name}", flush=True)
            print(run(args), flush=True)


if __name__ == "__main__":
    main()
