"""Kernel operations of the scheduler: ``scheduler_plan`` (dry run), ``scheduler_run`` (one tick),
``scheduler_log`` and ``scheduler_admit`` (the budget check a planner runs on a proposed call).

A tick folds the event log into usage signals, lets the policy propose, admits proposals against the
budgets (``engines.scheduler.plan``) and executes what was admitted through the kernel's own operations
(``submit_job`` for cache and consolidate, ``archive`` to evict), each as the principal it acts for:
whoever's reads made the cubes hot, over cubes that principal may read (checked here and again by the
operation), or the derived cube's owner to evict, drop or recompile it. Every decision, taken or not, is
recorded with its explanation; every executed one also gets an audit record.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from memcubed.cube.model import CubeKind, Right
from memcubed.engines.scheduler import Cost, Decision, get_policy, plan
from memcubed.engines.scheduler.tree import Tree, existing_paths
from memcubed.engines.scheduler.workset import select_members
from memcubed.errors import AccessDenied, Conflict, MemcubedError, ValidationError
from memcubed.kernel.base import ADMIN, utcnow
from memcubed.kernel.jobs import JobOps
from memcubed.kernel.lifecycle import LifecycleOps
from memcubed.kernel.outbox import SCHEDULER_CURSOR
from memcubed.kernel.scheduler_state import SIGNALS, SchedulerState, SchedulerStateOps
from memcubed.kernel.validation import parse
from memcubed.kernel.workset_state import working_set_scope
from memcubed.schemas.jobs import CacheJob, ConsolidateJob
from memcubed.schemas.operation import RecompileInput
from memcubed.schemas.ops import PrincipalPublic
from memcubed.schemas.scheduler import DecisionRecord, SchedulerLogInput, SchedulerTick
from memcubed.schemas.workset import WorkingSetInput

__all__ = ["SchedulerOps"]

AUDIT_OP = "scheduler.decision"
"""The op of the audit record each executed decision writes."""

TICK_LEASE = "scheduler_tick_lease"
"""Store meta key: ``<holder> <expiry epoch s>`` of the scheduler tick running now ("" when none)."""

_LEASE_S = 600.0
_NO_READER = "no principal whose reads made it hot may read every target"


class SchedulerOps(SchedulerStateOps, LifecycleOps, JobOps):
    """The scheduler's operations (see the module docstring)."""

    def scheduler_plan(self, *, principal: str, policy: str | None = None) -> SchedulerTick:
        """What the next tick would decide, writing nothing (administrators).

        Raises:
            AccessDenied: the principal is no administrator.
            ValidationError: an unknown policy.
        """
        self._scheduler_admin(principal)
        chosen = get_policy(policy or self.settings.scheduler_policy)
        state = self._scheduler_state()
        decisions = plan(chosen, state.view, state.ledger, max_actions=self.settings.scheduler_max_actions)
        records: list[DecisionRecord] = []
        for d in decisions:
            acting, why = self._acting(d, state)
            taken = d.admitted and acting is not None
            records.append(self._record(d, acting, "planned" if taken else "deferred", d.reason or why))
        return SchedulerTick(policy=chosen.name, clock=state.view.now, events=state.folded, decisions=records)

    def scheduler_run(self, *, principal: str, policy: str | None = None) -> SchedulerTick:
        """One tick: fold the event log, decide, execute what fits the budgets, record every decision
        (administrators; the background loop runs it as ``admin``).

        Raises:
            AccessDenied: the principal is no administrator.
            ValidationError: an unknown policy.
            Conflict: another tick is running on this store.
        """
        actor = self._scheduler_admin(principal)
        chosen = get_policy(policy or self.settings.scheduler_policy)
        self.flush_events()
        lease = self._take_tick_lease()
        try:
            state = self._scheduler_state()
            decisions = plan(chosen, state.view, state.ledger, max_actions=self.settings.scheduler_max_actions)
            with self._write():
                self.store.set_meta(SIGNALS, state.signals.dumps())
                self.store.set_meta(SCHEDULER_CURSOR, str(state.signals.cursor))
            records = [self._execute(d, state, actor) for d in decisions]
        finally:
            with self._write():
                if self.store.get_meta(TICK_LEASE) == lease:
                    self.store.set_meta(TICK_LEASE, "")
        return SchedulerTick(policy=chosen.name, clock=state.view.now, events=state.folded, decisions=records)

    def _take_tick_lease(self) -> str:
        """Hold the store's one scheduler tick (two ticks at once would both spend the same budget room).

        Raises:
            Conflict: another process's tick holds it and has not expired (ticks never take that long).
        """
        now = time.time()
        mine = f"{uuid.uuid4().hex} {now + _LEASE_S:.3f}"
        with self._write():
            held = (self.store.get_meta(TICK_LEASE) or "").split()
            if len(held) == 2 and float(held[1]) > now:
                raise Conflict("another scheduler tick is running; try again later", field="scheduler")
            self.store.set_meta(TICK_LEASE, mine)
        return mine

    def scheduler_log(self, *, principal: str, after_seq: int = 0, limit: int = 100,
                      action: str | None = None) -> list[DecisionRecord]:
        """Scheduler decisions oldest first: an administrator's view has all of them; anyone else sees those
        acting for them and those about their own cubes only.

        Raises:
            ValidationError: a bad page or action.
        """
        actor = self._actor(principal)
        inp = parse(SchedulerLogInput, {"after_seq": after_seq, "limit": limit, "action": action})
        return self.store.list_decisions(visible_to=None if actor.is_admin else actor.name, after_seq=inp.after_seq,
                                         limit=inp.limit, action=inp.action)

    def scheduler_admit(self, op: str, payload: BaseModel | Mapping[str, Any], *, principal: str) -> str | None:
        """Whether running ``op`` with ``payload`` as ``principal`` fits the scheduler's budgets: None when it
        does, else the budget it would exceed. Writes nothing; what a planner checks before each step.

        ``submit_job`` is judged by the job it submits; operations that spend no budget (archive, delete, ...)
        always fit. A ``set_working_set`` costs what a ``cache`` of its members does (the KV bytes and the
        tokens it compiles); without ``cube_ids``, of the members the scheduler would choose now.

        Raises:
            ValidationError: a malformed payload.
            NotFound / AccessDenied: the principal cannot read a cube the call names.
        """
        actor = self._actor(principal)
        body = payload.model_dump() if isinstance(payload, BaseModel) else dict(payload)
        if op == "submit_job":
            op, body = str(body.get("kind")), dict(body.get("params") or {})
        if op not in ("cache", "consolidate", "recompile", "set_working_set"):
            return None
        state = self._scheduler_state()
        if op == "set_working_set":
            inp = parse(WorkingSetInput, body)
            if inp.cube_ids is None and not self._default_members(inp.namespace, actor, state):
                return None  # nothing would be compiled (set_working_set refuses it: nothing read yet)
        namespace, cost = self._admit_cost(op, body, actor, state)
        return state.ledger.admit(namespace, cost)

    # -- helpers ------------------------------------------------------------------------------------------
    def _scheduler_admin(self, principal: str) -> PrincipalPublic:
        actor = self._actor(principal)
        if not actor.is_admin:
            raise AccessDenied("only administrators run the scheduler", principal=actor.name)
        return actor

    def _admit_cost(self, op: str, body: dict[str, Any], actor: PrincipalPublic,
                    state: SchedulerState) -> tuple[str, Cost]:
        view = state.view
        if op == "recompile":
            cube = self._load(parse(RecompileInput, body).cube_id, actor, Right.WRITE)
            ids = sorted(r.id for r in cube.derived_from if r.id in view.cubes)
            kind = "cache" if cube.kind is CubeKind.ACTIVATION else "consolidate"
        elif op == "set_working_set":
            kind = "cache"
            inp = parse(WorkingSetInput, body)
            ids = sorted(inp.cube_ids) if inp.cube_ids is not None else self._default_members(inp.namespace, actor,
                                                                                                state)
        else:
            kind = op
            job: CacheJob | ConsolidateJob = parse(CacheJob, body) if op == "cache" else parse(ConsolidateJob, body)
            ids = sorted(job.cube_ids)
        sources = [self._load(i, actor, Right.READ) for i in ids]
        if not sources:
            raise ValidationError("no live source cube to build from", field="cube_ids")
        namespace = sources[0].namespace
        if kind == "consolidate":
            return namespace, Cost(adapters=1, train_s=len(sources) * view.config.train_s_per_fact)
        chain = tuple(ids)
        view = replace(view, cubes={**view.cubes, **{c.id: state.info(c) for c in sources}})
        size, compile_tokens = Tree(view, existing_paths(view)).marginal(chain)
        return namespace, Cost(activation_bytes=size, compile_tokens=compile_tokens,
                               activation_memory_bytes=round(view.tokens(chain) * view.config.memory_bytes_per_token))

    def _default_members(self, namespace: str, actor: PrincipalPublic, state: SchedulerState) -> list[str]:
        """The members ``set_working_set`` without ``cube_ids`` would choose now (token counts estimated)."""
        ids = sorted(c for c, cube in state.cubes.items() if cube.namespace == namespace and c in state.signals.cubes)
        return sorted(select_members(state.view, working_set_scope(self, actor, namespace, ids, state.cubes),
                                     min_reads=1))

    def _acting(self, decision: Decision, state: SchedulerState) -> tuple[PrincipalPublic | None, str | None]:
        """Who ``decision`` acts for: the first of its readers that may read (or, to evict, administer) every
        target; (None, why) when none may."""
        p = decision.proposal
        right = Right.READ if p.action in ("cache", "consolidate", "working_set") else Right.ADMIN
        for name in p.readers:
            candidate = self.store.get_principal(name)
            if candidate is None or candidate.disabled or candidate.deleted_at is not None:
                continue
            try:
                for target in p.targets:
                    self._load(target, candidate, right)
            except MemcubedError:
                continue
            return candidate, None
        return None, _NO_READER

    def _record(self, decision: Decision, acting: PrincipalPublic | None, outcome: str, reason: str | None,
                job_id: str | None = None, result: dict[str, Any] | None = None) -> DecisionRecord:
        p = decision.proposal
        return DecisionRecord(id=uuid.uuid4().hex, at=utcnow(), clock=decision.clock, policy=decision.policy,
                              action=p.action, namespace=p.namespace, principal=acting.name if acting else None,
                              targets=list(p.targets), score=p.score, inputs=p.inputs, cost=p.cost.as_dict(),
                              budget=decision.budget, outcome=outcome,  # type: ignore[arg-type]
                              reason=reason, job_id=job_id, result=result or {})

    def _execute(self, decision: Decision, state: SchedulerState, actor: PrincipalPublic) -> DecisionRecord:
        """Execute one admitted decision as the principal it acts for, and record it (deferred when not admitted
        or when nobody may act); an operation that refuses records it failed, with the refusal."""
        acting, why = self._acting(decision, state)
        outcome, reason, job_id = "deferred", decision.reason or why, None
        result: dict[str, Any] = {}
        if decision.admitted and acting is not None:
            try:
                job_id, result = self._carry_out(decision, state, acting)
                outcome, reason = "done", None
            except MemcubedError as exc:
                outcome, reason = "failed", f"{type(exc).__name__}: {exc}"
        record = self._record(decision, acting, outcome, reason, job_id, result)
        owners = self._owners(decision, state)
        with self._write() as pending:
            seq = self.store.insert_decision(record, owners)
            if outcome in ("done", "failed"):
                target = record.targets[0] if len(record.targets) == 1 else None
                self._audit(pending, actor.name, AUDIT_OP, target, None,
                            {"decision": record.id, "policy": record.policy, "action": record.action,
                             "acting_for": record.principal, "targets": record.targets, "outcome": outcome,
                             "reason": reason, "job_id": job_id})
        return record.model_copy(update={"seq": seq})

    def _carry_out(self, decision: Decision, state: SchedulerState, acting: PrincipalPublic
                   ) -> tuple[str | None, dict[str, Any]]:
        p = decision.proposal
        model = self.settings.scheduler_model
        if p.action in ("cache", "consolidate"):
            job = self.submit_job({"kind": p.action, "params": {"cube_ids": list(p.targets), "model": model}},
                                  principal=acting.name)
            return job.id, {"sources": list(p.targets)}
        if p.action == "working_set":  # built by set_working_set, as its principal, in a worker
            job = self.submit_job({"kind": "set_working_set", "params": {
                "namespace": p.namespace, "cube_ids": list(p.targets), "model": model}}, principal=acting.name)
            return job.id, {"sources": list(p.targets), "replaces": p.inputs.get("replaces")}
        cube = self._load(p.targets[0], acting, Right.ADMIN)
        if p.action == "recompile":
            sources = sorted(r.id for r in cube.derived_from if r.id in state.cubes)
            kind = "cache" if cube.kind is CubeKind.ACTIVATION else "consolidate"
            params = {"cube_ids": sources, "model": model}
            job_kind = self.job_kinds()[kind]
            job_kind.check(parse(job_kind.params, params), acting)  # refuse before archiving anything
            self._archive(cube.id, acting, restore_sources=False)
            job = self.submit_job({"kind": kind, "params": params}, principal=acting.name)
            return job.id, {"archived": cube.id, "sources": sources}
        self._archive(cube.id, acting, restore_sources=False)
        return None, {"archived": cube.id}

    @staticmethod
    def _owners(decision: Decision, state: SchedulerState) -> list[str]:
        """The owners of what a decision is about (who may read it in the scheduler log)."""
        p = decision.proposal
        if p.action == "working_set":  # the principal's own working set, of the members' owners' cubes
            return sorted({*p.readers, *(state.cubes[t].owner for t in p.targets if t in state.cubes)})
        if p.action in ("cache", "consolidate"):
            return sorted({state.cubes[t].owner for t in p.targets if t in state.cubes} or {ADMIN})
        return sorted({c.owner for c in state.view.derived if c.id in p.targets} or {ADMIN})
