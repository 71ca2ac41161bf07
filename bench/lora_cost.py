"""What one ``consolidate`` costs through the kernel, with default settings, for 1, 4 and 16 LoCoMo facts.

Each run is a fresh SQLite store and a real ``consolidate`` (evaluation before, training,
evaluation after, the gate, the write). ``cold``: the base model's remembered control and rehearsal
answers are forgotten first, in the process and on disk (``engines.lora.basecache``: the first
consolidation ever with this model); ``disk``: forgotten in the process only (the first consolidation
of a freshly started worker); ``warm``: a third run of the same size in the same process (sizes up to
``BENCH_LORA_WARM_MAX``, default 4). The torch threads are the kernel's (``Settings.train_threads``,
``MEMCUBED_TRAIN_THREADS``). Reported: wall
seconds, CPU seconds of the process (all its threads: on a machine shared with other work, CPU seconds / torch
threads is what the wall time would be on a quiet one), seconds per fact, steps, probes, the gate's verdict.
``BENCH_LORA_PROFILE=PATH`` runs each consolidate under cProfile and dumps its stats to ``PATH.<facts>``
(CPU seconds then include the profiler's overhead).
"""

from __future__ import annotations

import cProfile
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import memcubed
from memcubed.backends.models import LocalTransformersLM
from memcubed.engines.lora import Fact, basecache

SIZES = (1, 4, 16)


def _clear_caches(lm: LocalTransformersLM, *, disk: bool = True) -> None:
    """Forget the base model's remembered answers: in this process, and (``disk``) in the cache file too."""
    basecache.clear_memory()
    if disk:
        basecache.BaseAnswers(lm.fingerprint).path.unlink(missing_ok=True)


def _consolidate(lm: LocalTransformersLM, facts: list[tuple[Fact, str, str]]) -> dict[str, Any]:
    import torch

    with tempfile.TemporaryDirectory(prefix="bench-lora-cost-") as folder, \
            memcubed.open_store(Path(folder) / "memories.db", embedder="none") as mc:
        ids = [mc.add(f.statement, meta={"qa": [{"question": q, "answer": a}]}).id for f, q, a in facts]
        profile = os.environ.get("BENCH_LORA_PROFILE")  # a path: cProfile the call and dump its stats there
        profiler = cProfile.Profile() if profile else None
        started, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        cube = mc.consolidate(ids, lm=lm)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(f"{profile}.{len(facts)}")
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    evaluation, verdict = cube.meta["evaluation"], cube.meta["gate"]
    return {"facts": len(facts), "seconds": round(seconds, 1), "seconds_per_fact": round(seconds / len(facts), 1),
            "cpu_s": round(cpu_s, 1), "load_avg_1m": round(os.getloadavg()[0], 2),
            "train_s": cube.meta["train_s"], "steps": cube.meta["steps"], "pairs": cube.meta["pairs"],
            "epochs_run": cube.meta["epochs_run"], "stopped_early": cube.meta["stopped_early"],
            "recall_checks": cube.meta["recall_checks"], "profiled": bool(profile),
            "torch_threads": cube.meta.get("torch_threads", torch.get_num_threads()),
            "after_from_stop_check": cube.meta.get("after_from_stop_check"),
            "control_probes": evaluation["control"]["before"]["probes"], "state": cube.state.value,
            "recall_after": evaluation["facts"]["after"]["recall"],
            "drift_points": evaluation["control"]["drift_points"], "gate": verdict["passed"],
            "missed": [n for n, cube_id in enumerate(ids)  # which facts (by position) a probe still missed after
                       if (row := evaluation["per_source"][cube_id])["hits_after"] < row["probes"]]}


def main(lm: LocalTransformersLM, facts: list[tuple[Fact, str, str]],
         sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    """Cold and warm consolidations of the first 1, 4 and 16 ``facts`` (fact, question, answer)."""
    runs: list[dict[str, Any]] = []
    for size in sizes:
        _clear_caches(lm)
        runs.append({"cache": "cold", **_consolidate(lm, facts[:size])})
        print(summary_line(runs[-1]), flush=True)
        if size <= int(os.environ.get("BENCH_LORA_WARM_MAX", "4")):
            _clear_caches(lm, disk=False)  # a fresh worker process: only the cache file is left
            runs.append({"cache": "disk", **_consolidate(lm, facts[:size])})
            print(summary_line(runs[-1]), flush=True)
            runs.append({"cache": "warm", **_consolidate(lm, facts[:size])})
            print(summary_line(runs[-1]), flush=True)
    return {"sizes": list(sizes), "runs": runs}


def summary_line(run: dict[str, Any]) -> str:
    """One run as a line of text."""
    verdict = "served" if run["gate"] else "gated (inactive)"
    return (f"consolidate {run['facts']:>2} facts ({run['cache']}): {run['seconds']} s ({run['cpu_s']} cpu-s), "
            f"{run['seconds_per_fact']} s/fact, {run['steps']} steps ({run.get('epochs_run', '?')} epochs), "
            f"{run['control_probes']} control, "
            f"recall {run['recall_after']}, drift {run['drift_points']:+} pts, {verdict}")


if __name__ == "__main__":
    # ``python -m bench.lora_cost N ...``: one process per size, each writing bench/results/lora_cost_N.json
    # (``BENCH_LORA_RESULT`` names another file); ``--merge`` puts them into lora.json.
    import json
    import sys

    from bench import lora
    from bench.common import RESULTS, write_result

    if sys.argv[1:] == ["--merge"]:
        result = json.loads((RESULTS / "lora.json").read_text(encoding="utf-8"))
        found = [n for n in SIZES if (RESULTS / f"lora_cost_{n}.json").exists()]
        parts = [json.loads((RESULTS / f"lora_cost_{n}.json").read_text(encoding="utf-8")) for n in found]
        kept = {k: v for k, v in result.items() if k not in ("benchmark", "at", "machine")}
        kept["consolidate_cost"] = {"sizes": found, "runs": [r for p in parts for r in p["runs"]],
                                    "machines": [p["machine"] for p in parts]}
        print(write_result("lora", kept))
    else:
        everything = lora._facts(Path(os.environ.get("BENCH_LORA_DATA", "../shared/data/locomo/locomo_dev.json")))
        model = LocalTransformersLM()
        for n in map(int, sys.argv[1:]):
            write_result(os.environ.get("BENCH_LORA_RESULT", f"lora_cost_{n}"), main(model, everything, (n,)))
