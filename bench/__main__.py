"""``python -m bench [--data PATH] [--only retrieval|speed|kvcache|lora|backends|load|readwrite|hostile|chat_replay]
[--limit N]``: run benchmarks (``make fuzz`` runs ``bench.fuzz`` on its own; ``--limit`` samples chat_replay)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import backends, chat_replay, hostile, kvcache, load, lora, readwrite, retrieval, speed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo/locomo_dev.json"))
    parser.add_argument("--only", default=None,
                        choices=["retrieval", "speed", "kvcache", "lora", "backends", "load", "readwrite", "hostile",
                                 "chat_replay"])
    parser.add_argument("--limit", type=int, default=None, help="chat_replay: ask only the first N questions")
    args = parser.parse_args()
    if args.only in (None, "retrieval"):
        result = retrieval.main(args.data)
        print(json.dumps(result["recall"], indent=1))
    if args.only in (None, "speed"):
        result = speed.main(args.data)
        print(json.dumps(result, indent=1))
    if args.only in (None, "kvcache"):
        result = kvcache.main(args.data)
        print(kvcache.summary(result))
    if args.only in (None, "lora"):
        result = lora.main(args.data)
        print(lora.summary(result))
    if args.only in (None, "backends"):
        result = backends.main(args.data)
        print(json.dumps({k: result[k] for k in ("size", "ratios_postgres_over_sqlite")}, indent=1))
    if args.only in (None, "load"):
        result = load.main(args.data)
        print(load.summary(result))
    if args.only in (None, "readwrite"):
        result = readwrite.main(args.data)
        print(readwrite.summary(result))
    if args.only in (None, "hostile"):
        result = hostile.main(args.data)
        print(hostile.summary(result))
    if args.only in (None, "chat_replay"):
        result = chat_replay.main(args.data, limit=args.limit)
        print(chat_replay.summary(result))


if __name__ == "__main__":
    main()
