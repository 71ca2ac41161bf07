"""The LLM planner ("LLM as kernel"): a model proposes operations, the kernel validates every one.

``propose_plan`` shows a language model what the acting principal may see (its recent events, the
memories they name, quoted, the operations it may call, the budgets) and reads a :class:`Plan` out of the
reply; it writes nothing but a ``plan.propose`` audit record. ``execute_plan`` checks **every** step
before running any: dependencies (earlier steps only, no cycles), no planner operation (no recursion),
the key scope, the size of its arguments, then schema, rights and existence through the registry's
``validate`` (exactly what a direct call would be refused for), then the budgets. It runs only the
steps that passed, in order, each through the registry as a direct call by the same principal would
run (a job operation is queued, as over REST), skips a step whose dependency did not run, and audits
every rejected step (``plan.reject``) and the outcome (``plan.execute``). So a plan never does more
than its principal could by hand: every effect is a call the principal was allowed to make.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from memcubed.backends.models.base import LanguageModel
from memcubed.engines.planner import PlanContext, parse_plan, plan_messages
from memcubed.errors import AccessDenied, BudgetExceeded, MemcubedError, ValidationError
from memcubed.kernel.plancheck import BudgetCheck, cap_budget, dependency_faults
from memcubed.kernel.plancontext import PLANNER_OPS, PlanContextOps, event_line
from memcubed.kernel.validation import check_text, parse
from memcubed.schemas.ops import PrincipalPublic
from memcubed.schemas.plan import Plan, PlanProposal, PlanReport, PlanStep, StepReport, StepStatus
from memcubed.schemas.server import SCOPE_LEVEL

if TYPE_CHECKING:
    from memcubed.kernel.kernel import Kernel

__all__ = ["BudgetCheck", "PlannerOps"]


def _digest(plan: Plan) -> str:
    return hashlib.sha256(plan.model_dump_json().encode("utf-8")).hexdigest()


def _scope(scope: object) -> str:
    if not isinstance(scope, str) or scope not in SCOPE_LEVEL:
        raise ValidationError(f"scope must be one of {', '.join(SCOPE_LEVEL)}", field="scope")
    return scope


def _result_id(result: object) -> str | None:
    for attr in ("id", "key_id"):
        value = getattr(result, attr, None)
        if isinstance(value, str):
            return value
    return None


class PlannerOps(PlanContextOps):
    """Proposing plans with a language model, and validating and running them (see the module docstring)."""

    def propose_plan(self, goal: str | None = None, *, principal: str, lm: LanguageModel,
                     scope: str = "write") -> PlanProposal:
        """Ask ``lm`` for a plan towards ``goal`` (or what recent events call for), from what ``principal``
        may see; validate nothing against rights yet (``execute_plan`` does).

        Args:
            goal: what the plan should achieve (at most 4000 characters).
            lm: the model that proposes.
            scope: the widest key scope the caller holds: operations needing more are not offered.

        Returns:
            the proposal: the plan, the model's name, what its context held.

        Raises:
            ValidationError: ``goal`` or ``scope`` is malformed.
            MalformedPlan: the reply holds no plan, or a truncated or malformed one.
            BackendUnavailable: the model cannot be reached.
        """
        actor = self._actor(principal)
        if goal is not None:
            if not isinstance(goal, str):
                raise ValidationError("goal must be text", field="goal")
            check_text(goal, 4000)
        operations = self._plannable(actor, _scope(scope))
        settings = self.settings
        events, cubes = self._visible_events(actor, settings.planner_context_events)
        memories = self._plan_memories(actor, events, cubes, limit=settings.planner_context_memories,
                                       chars=settings.planner_memory_chars)
        context = PlanContext(goal=goal, budgets=self._planner_budgets(actor), operations=operations,
                              events=[event_line(e, actor) for e in events], memories=memories,
                              max_steps=settings.planner_max_steps)
        reply = lm.complete(plan_messages(context), max_new_tokens=settings.planner_max_new_tokens)
        plan = parse_plan(reply)
        with self._write() as pending:
            self._audit(pending, actor.name, "plan.propose", None, None,
                        {"model": lm.name, "steps": len(plan.steps), "ops": [s.op for s in plan.steps],
                         "plan_sha256": _digest(plan)})
        return PlanProposal(plan=plan, model=lm.name, operations=[op.name for op in operations],
                            events=len(events), memories=len(memories))

    def execute_plan(self, plan: Plan | Mapping[str, Any], *, principal: str, dry_run: bool = False,
                     budget: BudgetCheck | None = None, scope: str = "write") -> PlanReport:
        """Validate every step of ``plan`` as ``principal``, then run the valid ones in order.

        Args:
            plan: the plan (a :class:`Plan` or its JSON-able mapping).
            dry_run: validate and report only; run nothing.
            budget: admits each validated step (see ``BudgetCheck``), after the settings caps; when omitted,
                the scheduler's ``scheduler_admit`` if this kernel has one.
            scope: the widest key scope the caller holds; steps needing more are rejected. Every interface
                passes ``write``: administration is planned only in process, by an administrator.

        Returns:
            one report per step: ran (or valid, for a dry run), rejected, skipped or failed, with the reason.

        Raises:
            ValidationError: ``plan`` is not a valid plan, or ``scope`` is unknown.
            UnknownPrincipal / AccessDenied: the principal is unknown or disabled.
        """
        from memcubed.kernel.registry import OPERATIONS  # the registry is built on the kernel

        actor = self._actor(principal)
        plan = parse(Plan, dict(plan) if isinstance(plan, Mapping) else plan)
        level = SCOPE_LEVEL[_scope(scope)]
        caps = cap_budget(self.settings, writes=lambda op: OPERATIONS[op].audit is not None,
                          jobs=lambda op: OPERATIONS[op].job)
        extra = budget if budget is not None else self._scheduler_budget(actor)
        faults = dependency_faults(plan.steps)
        verdicts: dict[str, StepReport] = {}
        admitted: list[tuple[PlanStep, Any]] = []
        for step in plan.steps:
            blocked = [d for d in step.depends_on if d in verdicts and verdicts[d].status is not StepStatus.VALID]
            if step.id in faults:
                verdicts[step.id] = _report(step, StepStatus.REJECTED, faults[step.id], ValidationError.code)
            elif blocked:
                verdicts[step.id] = _report(step, StepStatus.SKIPPED, f"its dependency {blocked[0]} did not run "
                                             f"({verdicts[blocked[0]].status.value})")
            else:
                verdicts[step.id], data = self._check_step(step, actor, level, caps, extra)
                if data is not None:
                    admitted.append((step, data))
        rejected = [r for r in verdicts.values() if r.status is StepStatus.REJECTED]
        if rejected:
            with self._write() as pending:
                for report in rejected:
                    self._audit(pending, actor.name, "plan.reject", None, None,
                                {"step": report.id, "op": report.op[:64], "code": report.code,
                                 "reason": report.reason[:500], "dry_run": dry_run})
        if not dry_run:
            self._run_steps(admitted, verdicts, actor)
        outcome = PlanReport(dry_run=dry_run, steps=[verdicts[s.id] for s in plan.steps])
        with self._write() as pending:
            self._audit(pending, actor.name, "plan.execute", None, None,
                        {"plan_sha256": _digest(plan), "dry_run": dry_run,
                         **{status.value: outcome.count(status) for status in StepStatus}})
        return outcome

    # -- the steps -----------------------------------------------------------------------------------------
    def _check_step(self, step: PlanStep, actor: PrincipalPublic, level: int, caps: BudgetCheck,
                    extra: BudgetCheck | None) -> tuple[StepReport, Any]:
        """Every check of one step, writing nothing: its report (``valid`` or ``rejected``) and its input."""
        from memcubed.kernel.registry import OPERATIONS

        op = OPERATIONS.get(step.op)
        if step.op in PLANNER_OPS:
            return _reject(step, "a plan cannot propose or execute plans", ValidationError.code)
        if op is not None and op.admin and not actor.is_admin:
            return _reject(step, f"{op.name} administers the store: only administrators may plan it", AccessDenied.code)
        if op is not None and SCOPE_LEVEL[op.scope] > level:
            return _reject(step, f"{op.name} needs a key of scope {op.scope}, wider than the plan's",
                           AccessDenied.code)
        size = len(json.dumps(step.args, default=str))
        if size > self.settings.planner_max_args_chars:
            return _reject(step, f"over budget: its arguments have {size} characters of JSON; a planned step may"
                           f" have {self.settings.planner_max_args_chars}", BudgetExceeded.code)
        try:
            data = cast("Kernel", self).validate_call(step.op, step.args, principal=actor.name)
        except MemcubedError as exc:
            return _reject(step, exc.message, exc.code)
        for check in (caps, extra):
            over = check(step.op, data) if check is not None else None
            if over is not None:
                return _reject(step, f"over budget: {over}", BudgetExceeded.code)
        return _report(step, StepStatus.VALID), data

    def _run_steps(self, admitted: list[tuple[PlanStep, Any]], verdicts: dict[str, StepReport],
                   actor: PrincipalPublic) -> None:
        """Run the admitted steps in order, each as a direct call; a step whose dependency did not run is
        skipped."""
        from memcubed.kernel.registry import OPERATIONS

        kernel = cast("Kernel", self)  # the planner is one of the Kernel's parts
        for step, data in admitted:
            blocked = [d for d in step.depends_on if verdicts[d].status is not StepStatus.RAN]
            if blocked:
                why = f"its dependency {blocked[0]} did not run ({verdicts[blocked[0]].status.value})"
                verdicts[step.id] = _report(step, StepStatus.SKIPPED, why)
                continue
            try:
                if OPERATIONS[step.op].job:  # long work is queued, as every interface queues it
                    result = kernel.call("submit_job", {"kind": step.op, "params": data.model_dump(mode="json")},
                                         principal=actor.name)
                else:
                    result = kernel.call(step.op, data, principal=actor.name)
            except MemcubedError as exc:
                verdicts[step.id] = _report(step, StepStatus.FAILED, exc.message, exc.code)
                continue
            verdicts[step.id] = _report(step, StepStatus.RAN, result_id=_result_id(result))

    def _scheduler_budget(self, actor: PrincipalPublic) -> BudgetCheck | None:
        """The scheduler's admission check for ``actor`` when this kernel has one (``scheduler_admit``)."""
        admit = getattr(self, "scheduler_admit", None)
        if admit is None:
            return None
        return lambda op, data: admit(op, data, principal=actor.name)


def _report(step: PlanStep, status: StepStatus, reason: str = "", code: str | None = None,
            result_id: str | None = None) -> StepReport:
    return StepReport(id=step.id, op=step.op, status=status, reason=reason, code=code, result_id=result_id)


def _reject(step: PlanStep, reason: str, code: str) -> tuple[StepReport, None]:
    return _report(step, StepStatus.REJECTED, reason, code), None
