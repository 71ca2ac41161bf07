"""The default policy's moves on parameter memory: consolidate hot, stable, important facts; recompile or
drop stale adapters."""

from __future__ import annotations

from memcubed.engines.scheduler.budgets import Cost
from memcubed.engines.scheduler.view import Proposal, View

__all__ = ["consolidations", "stale_adapters"]


def consolidations(view: View) -> list[Proposal]:
    """One consolidate proposal per namespace: its facts read at least ``consolidate_min_reads`` times, of
    importance at least ``consolidate_min_importance``, unchanged for ``stable_s``, in no live adapter yet;
    the hottest ``max_facts`` of them (ties by id)."""
    config = view.config
    trained = {s for c in view.derived if c.kind == "parameter" for s in c.sources}
    facts: dict[str, list[tuple[float, str]]] = {}
    for cube_id, usage in view.signals.cubes.items():
        cube = view.cubes.get(cube_id)
        if (cube is None or cube_id in trained or usage.count < config.consolidate_min_reads
                or cube.importance < config.consolidate_min_importance or view.now - cube.updated < config.stable_s):
            continue
        facts.setdefault(cube.namespace, []).append((usage.hot(view.now, config.half_life_s), cube_id))
    out: list[Proposal] = []
    for ns, found in sorted(facts.items()):
        found.sort(key=lambda item: (-item[0], item[1]))
        chosen = sorted(cube_id for _, cube_id in found[: config.max_facts])
        readers: dict[str, int] = {}
        for cube_id in chosen:
            for principal, reads in view.signals.cubes[cube_id].principals.items():
                readers[principal] = readers.get(principal, 0) + reads
        ranked = tuple(p for p, _ in sorted(readers.items(), key=lambda kv: (-kv[1], kv[0])))
        score = sum(h for h, _ in found[: config.max_facts])
        out.append(Proposal("consolidate", ns, tuple(chosen), round(score, 9),
                            Cost(adapters=1, train_s=len(chosen) * config.train_s_per_fact),
                            {"facts": len(chosen), "hotness": round(score, 6),
                             "min_reads": config.consolidate_min_reads}, ranked))
    return out


def stale_adapters(view: View) -> list[Proposal]:
    """Recompile a stale adapter while a source of it is live (retrained on those), else drop it."""
    out: list[Proposal] = []
    for cube in view.derived:
        if cube.kind != "parameter" or not cube.stale or cube.pending:
            continue
        left = [s for s in cube.sources if s in view.cubes]
        if left:
            out.append(Proposal("recompile", cube.namespace, (cube.id,), float(len(left)),
                                Cost(train_s=len(left) * view.config.train_s_per_fact),
                                {"sources_left": len(left)}, (cube.owner,)))
        else:
            out.append(Proposal("drop", cube.namespace, (cube.id,), 0.0, Cost(adapters=-1),
                                {"sources_left": 0}, (cube.owner,)))
    return out
