"""The working set's stored state, read by both the working set operations and the scheduler: which cube is
a principal's working set of a namespace, whether chat may serve it now, and the scopes a scheduler tick
chooses (one per principal and namespace they read, with the candidates they may read and trust *now*:
the rights check is here, the policy only ranks)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace

from memcubed.cube.model import CubeKind, CubeState, MemCube, Right
from memcubed.engines.scheduler import Signals
from memcubed.engines.scheduler.view import WorkingSetScope
from memcubed.errors import MemcubedError
from memcubed.kernel import acl
from memcubed.kernel.base import KernelBase
from memcubed.schemas.jobs import JobState
from memcubed.schemas.ops import PrincipalPublic
from memcubed.schemas.scheduler import DecisionRecord

__all__ = ["WORKING_SET_URI", "Failures", "is_working_set", "pointer", "unusable", "working_set_cube",
           "working_set_failures", "working_set_scope", "working_set_scopes"]

Failures = Mapping[tuple[str, str], tuple[int, float]]
"""(principal, namespace) → (working-set builds that failed in a row, the event clock of the last one)."""

WORKING_SET_URI = "working-set"
"""``source.uri`` of an activation cube that is a working set (``source.type`` is ``derived``)."""
_POINTER = "workset:"  # store meta prefix: json [principal, namespace] -> the working set's cube id


def pointer(principal: str, namespace: str) -> str:
    """The store meta key naming ``principal``'s working set of ``namespace``."""
    return _POINTER + json.dumps([principal, namespace], separators=(",", ":"))


def is_working_set(cube: MemCube) -> bool:
    """Whether ``cube`` is a principal's working set (an activation cube marked by its source)."""
    return cube.source.type == "derived" and cube.source.uri == WORKING_SET_URI


def working_set_cube(kernel: KernelBase, principal: str, namespace: str) -> MemCube | None:
    """The working set cube the pointer names, if it is still one of this principal's."""
    cube_id = kernel.store.get_meta(pointer(principal, namespace))
    cube = kernel.store.load_cube(cube_id) if cube_id else None
    if (cube is None or cube.owner != principal or cube.kind is not CubeKind.ACTIVATION
            or cube.source.uri != WORKING_SET_URI or cube.namespace != namespace):
        return None
    return cube


def unusable(kernel: KernelBase, cube: MemCube, actor: PrincipalPublic) -> str | None:
    """Why ``cube`` may not be served to ``actor`` now (None: it may): rights through derivation, at use time."""
    if cube.state is not CubeState.ACTIVE:
        return f"the working set is {cube.state.value}"
    current = kernel.store.load_cubes([ref.id for ref in cube.derived_from])
    for ref in cube.derived_from:
        member = current.get(ref.id)
        if member is None or member.forgotten or member.state is not CubeState.ACTIVE:
            return f"member {ref.id} is no longer active"
        if acl.effective_right(member, actor) is None or not acl.trusted(member, actor):
            return f"member {ref.id} is no longer readable"
    return None


def working_set_failures(kernel: KernelBase, decisions: Sequence[DecisionRecord]) -> dict[tuple[str, str],
                                                                                       tuple[int, float]]:
    """From the durable decision log and its jobs: per (principal, namespace), the working-set builds that
    failed in a row since the last that succeeded (a submit the kernel refused, or a job that ended failed or
    cancelled), and the event clock of the last failure. Deferred decisions and jobs still pending are no
    attempt's end and count for neither."""
    runs: dict[tuple[str, str], tuple[int, float]] = {}
    for d in sorted(decisions, key=lambda r: r.seq):
        if d.action != "working_set" or d.principal is None or d.outcome not in ("done", "failed"):
            continue
        failed = d.outcome == "failed"
        if not failed:
            job = kernel.store.load_job(d.job_id) if d.job_id else None
            if job is None or not job.state.finished:
                continue
            failed = job.state is not JobState.SUCCEEDED
        key = (d.principal, d.namespace)
        if failed:
            runs[key] = (runs.get(key, (0, 0.0))[0] + 1, d.clock)
        else:
            runs.pop(key, None)
    return runs


def working_set_scopes(kernel: KernelBase, signals: Signals, live: Mapping[str, MemCube],
                       failures: Failures | None = None) -> list[WorkingSetScope]:
    """A scope per (principal, namespace) with reads of live memories, in that order (none when the
    scheduler does not own working sets), with its builds' failures in a row (``working_set_failures``)."""
    if not kernel.settings.scheduler_working_sets:
        return []
    read: dict[tuple[str, str], list[str]] = {}
    for cube_id, usage in sorted(signals.cubes.items()):
        cube = live.get(cube_id)
        if cube is not None:
            for name in usage.principals:
                read.setdefault((name, cube.namespace), []).append(cube_id)
    scopes: list[WorkingSetScope] = []
    for (name, namespace), ids in sorted(read.items()):
        actor = kernel.store.get_principal(name)
        if actor is not None and not actor.disabled and actor.deleted_at is None:
            scope = working_set_scope(kernel, actor, namespace, ids, live)
            count, at = (failures or {}).get((name, namespace), (0, 0.0))
            scopes.append(replace(scope, failures=count, failed_at=at) if count else scope)
    return scopes


def working_set_scope(kernel: KernelBase, actor: PrincipalPublic, namespace: str, ids: list[str],
                      live: Mapping[str, MemCube]) -> WorkingSetScope:
    """``actor``'s scope of ``namespace``: of ``ids``, those it may read and trusts now; its current working set
    and whether chat would serve it."""
    readable = tuple(c for c in ids if _may_hold(kernel, actor, live.get(c)))
    current = working_set_cube(kernel, actor.name, namespace)
    if current is None or current.state not in (CubeState.ACTIVE, CubeState.STALE):
        return WorkingSetScope(actor.name, namespace, readable)
    why = unusable(kernel, current, actor)
    return WorkingSetScope(actor.name, namespace, readable, current.id, why is None, why)


def _may_hold(kernel: KernelBase, actor: PrincipalPublic, cube: MemCube | None) -> bool:
    if cube is None or not acl.trusted(cube, actor):
        return False
    try:
        kernel._load(cube.id, actor, Right.READ)  # rights through derivation too, like every read
    except MemcubedError:
        return False
    return True
