"""Parameter memory on the packaged SmolLM2-135M (fp32, CPU): LoCoMo facts consolidated into a LoRA adapter.

Facts: LoCoMo ``observation`` statements (generated, sourced facts about the speakers) from the
evidence turns of a question whose short answer (at most six words) appears verbatim in the
statement: 62 in the three dev conversations, every fifth one held out as control.
Each fact is trained as its statement (continuation pairs, ``engines.lora.pairs``) plus LoCoMo's
question about it (answered by the statement). Recall is measured with no context on:

* **cloze**: the statement cut right before the answer span → the span (a cut the training never used);
* **question**: LoCoMo's question about the fact (trained) → the answer span in the output.

``STATEMENTS_ONLY = True`` trains the statements alone, which makes the question a held-out paraphrase.
Control: the built-in general-knowledge set (recall drift, in points) and held-out
LoCoMo facts (answer-loss drift). Plus: training time per epoch, adapter bytes, load time, and
generation time with the adapter loaded vs the base model.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import lora_cost
from bench.common import RESULTS, write_result
from memcubed.backends.blobs import FileBlobStore
from memcubed.backends.models import LocalTransformersLM
from memcubed.datasets.locomo import load_locomo
from memcubed.engines.lora import (
    QA,
    AdapterServer,
    Evaluation,
    Example,
    Fact,
    LoRAConfig,
    LoRAEngine,
    cloze,
    control_probes,
)
from memcubed.engines.lora import question as question_probe

MAX_ANSWER_WORDS = 6
GEN_TOKENS = 16
GEN_RUNS = 10
CONFIG = LoRAConfig(**json.loads(os.environ.get("BENCH_LORA_CONFIG", "{}")))
"""The defaults, or the overrides in ``BENCH_LORA_CONFIG`` (JSON) for trying a variant (``BENCH_LORA_RESULT``
names its result file, ``BENCH_TORCH_THREADS`` its threads, so that variants can run side by side)."""
STATEMENTS_ONLY = False


def _facts(path: Path) -> list[tuple[Fact, str, str]]:
    """(fact, question, answer): an observation fact from a question's evidence turns that holds its answer verbatim."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    conversations = {c.sample_id: c for c in load_locomo(path)}
    picked: list[tuple[Fact, str, str]] = []
    seen: set[str] = set()
    for sample in raw:
        conv = conversations[sample["sample_id"]]
        statements: dict[str, list[str]] = {}
        for session in sample["observation"].values():
            for facts in session.values():
                for text, dia in facts:
                    statements.setdefault(str(dia), []).append(str(text))
        for q in conv.questions:
            if q.category == 5 or not q.evidence or not q.answer or len(q.answer.split()) > MAX_ANSWER_WORDS:
                continue
            for text in (t for dia in q.evidence for t in statements.get(dia, [])):
                if text not in seen and cloze("", text, q.answer) is not None:
                    seen.add(text)
                    fid = f"{conv.sample_id}:{q.evidence[0]}:{len(picked)}"
                    picked.append((Fact(fid, 1, text), q.question, q.answer))
                    break
    return picked


def _probes(items: list[tuple[Fact, str, str]]) -> tuple[list[Example], list[Example]]:
    clozes: list[Example] = []
    questions: list[Example] = []
    for fact, question, answer in items:
        probe = cloze(fact.id, fact.statement, answer)
        assert probe is not None
        clozes.append(probe)
        questions.append(question_probe(fact.id, question, answer, fact.statement))
    return clozes, questions


def _score(evaluation: Evaluation) -> dict[str, Any]:
    return {**evaluation.summary(), "recall_pct": round(100 * evaluation.recall, 1)}


def _timed_generation(server: AdapterServer, prompts: list[list[int]], adapters: list[Any]) -> float:
    times = []
    for prompt in prompts:
        started = time.perf_counter()
        server.generate(prompt, adapters, max_new_tokens=GEN_TOKENS)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


def _run(engine: LoRAEngine, facts: list[Fact], sets: dict[str, list[Example]],
         before: dict[str, Evaluation]) -> dict[str, Any]:
    trained = engine.train(facts)
    after = {name: engine.evaluate(probes, [trained.adapter]) for name, probes in sets.items()}
    result: dict[str, Any] = {
        "pairs": trained.pairs, "steps": trained.result.steps, "loss_curve": trained.result.loss_curve,
        "train_s": round(trained.result.seconds, 1), "epoch_s": round(trained.result.seconds_per_epoch, 1),
        "sets": {name: {"before": _score(before[name]), "after": _score(after[name]),
                        "drift_points": round(100 * (after[name].recall - before[name].recall), 1),
                        "loss_drift": round(after[name].mean_loss - before[name].mean_loss, 4)} for name in sets},
        "misses": {name: [(r.probe.prompt, r.probe.answer, r.output) for r in after[name].results if not r.hit][:5]
                   for name in sets},
    }
    result["adapter"] = trained.adapter
    return result


def main(data: Path) -> dict[str, Any]:
    """Both parts, or with ``BENCH_LORA_PARTS=cost`` only the consolidation cost (``bench.lora_cost``), written
    into the existing result file next to the recall figures of its last full run."""
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_TORCH_THREADS", "2")))
    lm = LocalTransformersLM()
    everything = _facts(data)
    name = os.environ.get("BENCH_LORA_RESULT", "lora")
    if os.environ.get("BENCH_LORA_PARTS", "all") == "cost":
        previous = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
        kept = {k: v for k, v in previous.items() if k not in ("benchmark", "at", "machine")}
        result = {**kept, "consolidate_cost": lora_cost.main(lm, everything)}
        write_result(name, result)
        return result
    train_items = [item for i, item in enumerate(everything) if i % 5 != 4]
    held_items = everything[4::5]
    clozes, questions = _probes(train_items)
    held_clozes, _ = _probes(held_items)
    control = control_probes()
    sets = {"cloze": clozes, "question": questions, "control": control, "heldout_facts": held_clozes}

    statements = LoRAEngine(lm, CONFIG)
    before = {name: statements.evaluate(probes) for name, probes in sets.items()}
    print("evaluated before training", flush=True)
    facts = [Fact(f.id, 1, f.statement, () if STATEMENTS_ONLY else (QA(q, a),)) for f, q, a in train_items]
    run = _run(statements, facts, sets, before)
    mode = "statements_only" if STATEMENTS_ONLY else "statements_and_questions"
    print(summary({"facts": len(train_items), mode: run}), flush=True)
    adapter = run.pop("adapter")
    blobs = FileBlobStore(tempfile.mkdtemp(prefix="bench-lora-"))
    data_bytes = statements.dumps(adapter)
    digest = blobs.put(data_bytes)
    started = time.perf_counter()
    loaded = statements.loads(blobs.get(digest))
    parse_ms = (time.perf_counter() - started) * 1000
    server = AdapterServer(lm, slots=2)
    prompts = [statements.encode(p)[0] for p in questions[:GEN_RUNS]]
    started = time.perf_counter()
    server.generate(prompts[0], [(digest, lambda: loaded)], max_new_tokens=1)
    attach_ms = (time.perf_counter() - started) * 1000
    base_ms = _timed_generation(server, prompts, [])
    adapter_ms = _timed_generation(server, prompts, [(digest, lambda: loaded)])
    result = {
        "model": lm.name, "config": CONFIG.model_dump(mode="json"), "facts": len(train_items),
        "heldout_facts": len(held_items), "candidates": len(everything),
        mode: run,
        "adapter_bytes": len(data_bytes), "adapter_parameters": adapter.parameters,
        "load_ms": {"read_and_parse": round(parse_ms, 1), "attach_and_first_token": round(attach_ms, 1)},
        "generation_ms": {"tokens": GEN_TOKENS, "base": base_ms, "with_adapter": adapter_ms,
                          "overhead_pct": round(100 * (adapter_ms / base_ms - 1), 1)},
    }
    result["consolidate_cost"] = lora_cost.main(lm, everything)
    write_result(name, result)
    return result


def summary(result: dict[str, Any]) -> str:
    """A short human-readable digest of a result."""
    lines = [f"{result['facts']} LoCoMo facts, {result.get('adapter_bytes', 0) / 1e6:.1f} MB adapter"]
    for name in ("statements_only", "statements_and_questions"):
        run = result.get(name)
        if run is None:
            continue
        lines.append(f"{name}: {run['pairs']} pairs, {run['epoch_s']} s/epoch, loss {run['loss_curve'][0]} → "
                     f"{run['loss_curve'][-1]}")
        for set_name, scores in run["sets"].items():
            lines.append(f"  {set_name}: recall {scores['before']['recall_pct']}% → {scores['after']['recall_pct']}% "
                         f"(drift {scores['drift_points']:+} pts, loss {scores['before']['mean_loss']} → "
                         f"{scores['after']['mean_loss']})")
    lines.extend(lora_cost.summary_line(run) for run in result.get("consolidate_cost", {}).get("runs", []))
    gen = result.get("generation_ms")
    if gen is None:
        return "\n".join(lines)
    lines.append(f"generation of {gen['tokens']} tokens: {gen['base']} ms base, {gen['with_adapter']} ms with the "
                 f"adapter ({gen['overhead_pct']:+}%)")
    return "\n".join(lines)
