"""What a principal's planner sees: recent events, the memories they name, operations and budgets, all
scoped to what the principal may read.

An event is shown only if it is the principal's own (on a cube it can still read, or on no cube) or it
concerns a cube the principal administers (as ``stats`` are shown only to those who administer a cube).
A memory is shown only if it is readable, live, admitted by the principal's trust policy and readable
through its sources, exactly as it could enter the principal's chat prompts; it is rendered quoted.
Events carry system fields only (kind, cube, version, time, actor), never details a writer chose.
"""

from __future__ import annotations

from typing import Any

from memcubed.cube.model import CubeKind, CubeState, MemCube, Right
from memcubed.engines.kvcache.memory import CubeText
from memcubed.engines.planner import OperationSpec
from memcubed.errors import MemcubedError
from memcubed.kernel import acl
from memcubed.kernel.derivation import DerivationOps
from memcubed.schemas.events import LoggedEvent
from memcubed.schemas.ops import PrincipalPublic
from memcubed.schemas.server import SCOPE_LEVEL

__all__ = ["PLANNER_OPS", "PlanContextOps", "event_line"]

PLANNER_OPS = frozenset({"propose_plan", "execute_plan"})
"""The planner's own operations: never offered to, nor run from, a plan (no recursion)."""

_WINDOW = 2000  # newest logged events scanned for the ones a principal may see


class PlanContextOps(DerivationOps):
    """The planner's context, scoped to the acting principal (see the module docstring)."""

    def _event_head(self) -> int:
        """The seq of the newest logged event (0 when the log is empty)."""
        # The log Protocol only reads forwards (after a seq); gallop then bisect, each probe one indexed read.
        def first_after(seq: int) -> int | None:
            found = self.store.read_events(after_seq=seq, limit=1)
            return found[0].seq if found else None

        low = first_after(0)
        if low is None:
            return 0
        high = max(2 * low, low + 1)
        while (nxt := first_after(high)) is not None:
            low, high = nxt, 2 * nxt
        while high - low > 1:  # an event exists at `low`, none after `high`
            mid = (low + high) // 2
            nxt = first_after(mid)
            if nxt is None:
                high = mid
            else:
                low = nxt
        nxt = first_after(low)
        return low if nxt is None else nxt

    def _visible_events(self, actor: PrincipalPublic, limit: int) -> tuple[list[LoggedEvent], dict[str, MemCube]]:
        """The newest ``limit`` logged events ``actor`` may see, oldest first, and the cubes they name."""
        if limit <= 0:
            return [], {}
        head = self._event_head()
        logged = self.store.read_events(after_seq=max(0, head - _WINDOW), limit=_WINDOW)
        cubes = self.store.load_cubes(sorted({e.event.cube_id for e in logged if e.event.cube_id}))
        shown: list[LoggedEvent] = []
        for entry in logged:
            event = entry.event
            if event.cube_id is None:
                if event.principal == actor.name:
                    shown.append(entry)
                continue
            cube = cubes.get(event.cube_id)
            if cube is None or cube.state is CubeState.DELETED or cube.forgotten:
                continue
            held = acl.effective_right(cube, actor)
            if held is not None and (event.principal == actor.name or held >= Right.ADMIN):
                shown.append(entry)
        return shown[-limit:], cubes

    def _plan_memories(self, actor: PrincipalPublic, events: list[LoggedEvent], cubes: dict[str, MemCube],
                       *, limit: int, chars: int) -> list[CubeText]:
        """The memories the shown events name, newest event first, as ``actor``'s chat could see them."""
        chosen: list[CubeText] = []
        seen: set[str] = set()
        for entry in reversed(events):
            cube = cubes.get(entry.event.cube_id or "")
            if cube is None or cube.id in seen or len(chosen) >= limit:
                continue
            seen.add(cube.id)
            if (cube.kind is not CubeKind.PLAINTEXT or cube.state is not CubeState.ACTIVE or not cube.text
                    or not acl.trusted(cube, actor)):
                continue
            try:
                self._require_sources(cube, actor)
            except MemcubedError:
                continue
            chosen.append(CubeText.of(cube, text=cube.text[:chars]))
        return chosen

    def _plannable(self, actor: PrincipalPublic, scope: str) -> list[OperationSpec]:
        """The operations ``actor`` may plan under a key of ``scope``: no planner operation, none needing
        a wider key scope, and administration only for administrators."""
        from memcubed.kernel.registry import OPERATIONS  # the registry is built on the kernel

        return [OperationSpec(op.name, op.summary, op.input.model_json_schema())
                for op in OPERATIONS.values()
                if op.name not in PLANNER_OPS and SCOPE_LEVEL[op.scope] <= SCOPE_LEVEL[scope]
                and (actor.is_admin or not op.admin)]

    def _planner_budgets(self, actor: PrincipalPublic) -> dict[str, Any]:
        """The budgets a plan must fit, as shown to the model (the scheduler's connect here)."""
        s = self.settings
        return {"max_steps": s.planner_max_steps, "max_write_steps": s.planner_max_write_steps,
                "max_job_steps": s.planner_max_job_steps, "max_args_chars": s.planner_max_args_chars,
                "max_text_chars": s.max_text_chars}


def event_line(entry: LoggedEvent, actor: PrincipalPublic) -> dict[str, Any]:
    """A shown event: system fields only; ``by`` is ``you`` for the principal's own events."""
    event = entry.event
    line: dict[str, Any] = {"seq": entry.seq, "at": event.at.isoformat(timespec="seconds"), "kind": event.kind,
                            "by": "you" if event.principal == actor.name else event.principal}
    if event.cube_id is not None:
        line["cube_id"] = event.cube_id
        line["version"] = event.version
    return line
