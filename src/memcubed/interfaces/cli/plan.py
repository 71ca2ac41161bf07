"""CLI commands of the LLM planner: ``plan propose`` asks a model for a plan (and may run it), ``plan execute``
runs a plan from a JSON file; every step is checked against the acting principal's rights first."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from memcubed.errors import ValidationError
from memcubed.interfaces.cli.activation import Model
from memcubed.interfaces.cli.render import console, emit
from memcubed.interfaces.cli.state import handle_errors, state
from memcubed.schemas.plan import Plan, PlanReport

__all__ = ["plan_app"]

plan_app = typer.Typer(help="The LLM planner: a model proposes operations, the kernel validates every step.",
                       no_args_is_help=True)

DryRun = Annotated[bool, typer.Option("--dry-run", help="validate every step and report; run none")]


def _show_plan(plan: Plan) -> None:
    table = Table(title=f"plan: {plan.summary or '(no summary)'}")
    for column in ("step", "op", "args", "after", "reason"):
        table.add_column(column)
    for step in plan.steps:
        table.add_row(step.id, step.op, json.dumps(step.args, ensure_ascii=False)[:120], ", ".join(step.depends_on),
                      step.reason)
    console.print(table)


def _show_report(report: PlanReport) -> None:
    table = Table(title="dry run: nothing ran" if report.dry_run else "plan executed")
    for column in ("step", "op", "status", "result", "reason"):
        table.add_column(column)
    for step in report.steps:
        table.add_row(step.id, step.op, step.status.value, step.result_id or "", step.reason)
    console.print(table)


@plan_app.command("propose")
@handle_errors
def propose(ctx: typer.Context, goal: Annotated[str | None, typer.Option(help="what the plan should achieve")] = None,
            model: Model = None,
            execute: Annotated[bool, typer.Option("--execute", help="then execute the plan")] = False,
            dry_run: DryRun = False) -> None:
    """Ask a language model for a plan from your recent events (and --goal); with --execute or --dry-run, check
    every step against your rights and budgets and run the valid ones (none for a dry run)."""
    cli = state(ctx)
    client = cli.client()
    with console.status("asking the model for a plan"):
        proposal = client.propose_plan(goal, model=model)
    if not (execute or dry_run):
        emit(proposal) if cli.json else _show_plan(proposal.plan)
        return
    report = client.execute_plan(proposal.plan, dry_run=dry_run)
    if cli.json:
        emit({"proposal": proposal.model_dump(mode="json"), "report": report.model_dump(mode="json")})
    else:
        _show_plan(proposal.plan)
        _show_report(report)


@plan_app.command("execute")
@handle_errors
def execute(ctx: typer.Context,
            path: Annotated[str, typer.Argument(help="a JSON file holding the plan, or - for stdin")],
            dry_run: DryRun = False) -> None:
    """Check every step of a plan (JSON: {"steps": [{"id", "op", "args", "depends_on"}]}) against your rights
    and budgets, then run the valid ones."""
    cli = state(ctx)
    try:
        data = json.loads(sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"cannot read a JSON plan from {path}: {exc}", field="path") from exc
    if not isinstance(data, dict):
        raise ValidationError("a plan is a JSON object with a steps list", field="path")
    report = cli.client().execute_plan(data, dry_run=dry_run)
    emit(report) if cli.json else _show_report(report)
