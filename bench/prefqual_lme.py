"""Per-question LongMemEval-S split of retrieval settings: which stage loses which question.

``python -m bench.prefqual_lme <folder> '<json>'... [--start N] [--stop M] [--types t1,t2]`` reads the stores
``python -m bench.tune_retrieval build <folder>`` wrote and prints, per question, its type, the router's stages,
its gold turns' roles, and per setting (``TextConfig(**json)``, in order ``c0``, ``c1`` …) the turn recall@10,
session recall_any@10 and each gold turn's rank in the top 30 (``None`` beyond). One JSON line per question.
Dev data only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import retrieval_longmemeval
from bench.embed_cache import bench_embedder
from bench.tune_retrieval import lme_stores
from memcubed.engines.text.config import TextConfig
from memcubed.engines.text.route import route

_DEEP = 30


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.prefqual_lme")
    parser.add_argument("folder", type=Path)
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=60)
    parser.add_argument("--types", default="")
    args = parser.parse_args()
    configs = [json.loads(c) for c in args.configs]
    types = set(args.types.split(",")) - {""}
    model = bench_embedder("local")
    for n, (mc, hay) in enumerate(lme_stores(args.folder, TextConfig(), model, args.stop)):
        if n < args.start or (types and hay.question_type not in types):
            continue
        roles = {t.ref: t.role for t in hay.turns}
        gold = sorted(hay.gold_turns)
        line = {"i": n, "type": hay.question_type, "q": hay.question[:110], "route": route(hay.question).stages,
                "gold": {g: roles.get(g) for g in gold}}
        for i, config in enumerate(configs):
            mc.kernel.text.config = TextConfig(**config)
            refs = [h.cube.source.ref or "" for h in mc.search(hay.question, namespace="lme", k=_DEEP,
                                                               question_date=hay.question_date).hits]
            row = retrieval_longmemeval.score(hay, refs[:10])
            line[f"c{i}"] = [row["turn_r@10"], row["sess_any@10"], [refs.index(g) + 1 if g in refs else None
                                                                   for g in gold]]
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
