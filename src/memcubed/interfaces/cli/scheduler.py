"""CLI commands of the scheduler: plan (a dry run), run (one tick, or a loop) and log."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from memcubed.interfaces.cli.render import console, emit
from memcubed.interfaces.cli.state import handle_errors, state
from memcubed.schemas.scheduler import DecisionRecord

__all__ = ["scheduler_app"]

scheduler_app = typer.Typer(help="The scheduler: what moves between memory forms by itself, and why.",
                            no_args_is_help=True)

PolicyOption = Annotated[str | None, typer.Option(help="cost_aware, lru, lfu or lmcache (default: configured)")]


def show_decisions(decisions: list[DecisionRecord], title: str) -> None:
    """Print decisions as a table, in order."""
    table = Table(title=title)
    for column in ("seq", "action", "outcome", "for", "namespace", "targets", "score", "why"):
        table.add_column(column)
    for d in decisions:
        why = d.reason or ", ".join(f"{k}={v}" for k, v in sorted(d.inputs.items()))
        table.add_row(str(d.seq or "-"), d.action, d.outcome, d.principal or "-", d.namespace,
                      ", ".join(t[:8] for t in d.targets), f"{d.score:.4g}", why)
    console.print(table)


@scheduler_app.command("plan")
@handle_errors
def plan(ctx: typer.Context, policy: PolicyOption = None,
         dry_run: Annotated[bool, typer.Option("--dry-run", help="only show (a plan always is a dry run)")] = True
         ) -> None:
    """Show what the next scheduler tick would decide, with scores and budgets; changes nothing."""
    cli = state(ctx)
    tick = cli.client().scheduler_plan(policy=policy)
    emit(tick) if cli.json else show_decisions(tick.decisions, f"{tick.policy}: {len(tick.decisions)} decisions")


@scheduler_app.command("run")
@handle_errors
def run(ctx: typer.Context, policy: PolicyOption = None,
        loop: Annotated[bool, typer.Option("--loop", help="tick every --interval seconds until interrupted")] = False,
        interval: Annotated[float | None, typer.Option(help="seconds between ticks (default: configured)")] = None,
        ) -> None:
    """Run one scheduler tick (or, with --loop, one every interval): decide, then act within the budgets."""
    cli = state(ctx)
    client = cli.client()
    every = interval if interval is not None else client.kernel.settings.scheduler_interval_s
    while True:
        tick = client.scheduler_run(policy=policy)
        emit(tick) if cli.json else show_decisions(tick.decisions, f"{tick.policy}: {len(tick.decisions)} decisions")
        if not loop:
            return
        time.sleep(max(every, 0.1))


@scheduler_app.command("log")
@handle_errors
def log(ctx: typer.Context,
        after: Annotated[int, typer.Option(help="only decisions after this seq")] = 0,
        limit: Annotated[int, typer.Option(help="at most this many")] = 100,
        action: Annotated[str | None, typer.Option(help="cache, evict, consolidate, recompile or drop")] = None,
        ) -> None:
    """Show scheduler decisions with their reasons: about your cubes, or all of them for an administrator."""
    cli = state(ctx)
    decisions = cli.client().scheduler_log(after_seq=after, limit=limit, action=action)
    emit(decisions) if cli.json else show_decisions(decisions, f"{len(decisions)} decisions")
