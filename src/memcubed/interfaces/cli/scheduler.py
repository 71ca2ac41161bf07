"""CLI commands of the scheduler: plan (a dry run) and run (one tick, or a loop); ``log`` is derived."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from memcubed.interfaces.cli.render import emit, show_decisions
from memcubed.interfaces.cli.state import handle_errors, state

__all__ = ["scheduler_app"]

scheduler_app = typer.Typer(help="The scheduler: what moves between memory forms by itself, and why.",
                            no_args_is_help=True)

PolicyOption = Annotated[str | None, typer.Option(help="cost_aware, lru, lfu or lmcache (default: configured)")]


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
