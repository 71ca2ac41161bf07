"""The structural checks of a plan, before any rights are looked at: dependencies and the settings caps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from pydantic import BaseModel

from memcubed.schemas.plan import PlanStep
from memcubed.settings import Settings

__all__ = ["BudgetCheck", "cap_budget", "dependency_faults"]

BudgetCheck = Callable[[str, BaseModel], str | None]
"""Admits one validated step (operation name, validated input): None to admit it, else why it is over budget.
Called once per step that passed every other check, in plan order, so it may count what it admitted."""


def _cycles(steps: Sequence[PlanStep]) -> set[str]:
    """The ids of the steps on a dependency cycle (self-dependencies included)."""
    graph = {s.id: list(s.depends_on) for s in steps}
    on_cycle: set[str] = set()
    for start in graph:
        # Does `start` reach itself? Plans are small (at most 64 steps): a search from each step is enough.
        stack, seen = list(graph[start]), set()
        while stack:
            node = stack.pop()
            if node == start:
                on_cycle.add(start)
                break
            if node in seen or node not in graph:
                continue
            seen.add(node)
            stack.extend(graph[node])
    return on_cycle


def dependency_faults(steps: Sequence[PlanStep]) -> dict[str, str]:
    """Why each step with a bad id or ``depends_on`` is rejected: an id used by several steps (every one of
    them; a step depending on it is then skipped), a cycle, an unknown step, or a later one.

    Returns:
        step id → reason, for the faulty steps only.
    """
    uses = Counter(s.id for s in steps)
    faults = {i: f"step id {i} is used by {n} steps; ids must be unique" for i, n in uses.items() if n > 1}
    position = {s.id: n for n, s in enumerate(steps)}
    cycles = _cycles(steps)
    for n, step in enumerate(steps):
        if step.id in faults:
            continue
        unknown = [d for d in step.depends_on if d not in position]
        later = [d for d in step.depends_on if d in position and position[d] >= n]
        if step.id in cycles:
            faults[step.id] = f"step {step.id} is on a dependency cycle"
        elif unknown:
            faults[step.id] = f"step {step.id} depends on unknown step(s) {', '.join(unknown)}"
        elif later:
            faults[step.id] = (f"step {step.id} depends on later step(s) {', '.join(later)}; only earlier ones may"
                               " be named")
    return faults


def cap_budget(settings: Settings, *, writes: Callable[[str], bool], jobs: Callable[[str], bool]) -> BudgetCheck:
    """The settings caps of one plan as a budget check: ``planner_max_steps`` steps, of which at most
    ``planner_max_write_steps`` write and ``planner_max_job_steps`` queue long work.

    Args:
        writes: whether an operation writes.
        jobs: whether an operation runs as a background job.
    """
    admitted = {"steps": 0, "writes": 0, "jobs": 0}

    def check(op: str, data: BaseModel) -> str | None:
        if admitted["steps"] >= settings.planner_max_steps:
            return f"a plan may run at most {settings.planner_max_steps} steps"
        if writes(op) and admitted["writes"] >= settings.planner_max_write_steps:
            return f"a plan may run at most {settings.planner_max_write_steps} steps that write"
        if jobs(op) and admitted["jobs"] >= settings.planner_max_job_steps:
            return f"a plan may queue at most {settings.planner_max_job_steps} jobs"
        admitted["steps"] += 1
        admitted["writes"] += writes(op)
        admitted["jobs"] += jobs(op)
        return None

    return check
