"""CLI commands for the working set: ``memcubed working-set set|show|clear`` (one kernel operation each)."""

from __future__ import annotations

from typing import Annotated

import typer

from memcubed.interfaces.cli.activation import Model, load_model
from memcubed.interfaces.cli.render import emit
from memcubed.interfaces.cli.state import handle_errors, state
from memcubed.schemas.workset import WorkingSet

__all__ = ["working_set_app"]

working_set_app = typer.Typer(help="Your working set per namespace: hot memories kept as one exact KV prefix that "
                                   "chat puts first.", no_args_is_help=True)

Namespace = Annotated[str, typer.Option("--namespace", "-n", help="memory space")]


def _show(ws: WorkingSet) -> None:
    if ws.cube is None:
        print(f"no working set in namespace {ws.namespace}")
        return
    status = "usable" if ws.usable else f"not served: {ws.reason}"
    print(f"working set {ws.cube.id} in {ws.namespace} ({ws.cube.state.value}, {status}): {len(ws.members)} "
          f"memories, {ws.tokens} tokens")
    for member in ws.members:
        print(f"  {member}")


@working_set_app.command("set")
@handle_errors
def set_working_set(ctx: typer.Context, cube_ids: Annotated[list[str] | None, typer.Argument(
                        help="the members; none: the namespace's hottest memories under budget")] = None,
                    namespace: Namespace = "default", model: Model = None) -> None:
    """Make memories your working set of a namespace (replacing and archiving the previous one)."""
    cli = state(ctx)
    client = cli.client()
    load_model(client, model, open_model=False)
    ws = client.set_working_set(cube_ids or None, namespace=namespace, model=model)
    emit(ws) if cli.json else _show(ws)


@working_set_app.command("show")
@handle_errors
def show_working_set(ctx: typer.Context, namespace: Namespace = "default") -> None:
    """Show your working set of a namespace and whether chat serves it now."""
    cli = state(ctx)
    ws = cli.client().working_set(namespace=namespace)
    emit(ws) if cli.json else _show(ws)


@working_set_app.command("clear")
@handle_errors
def clear_working_set(ctx: typer.Context, namespace: Namespace = "default") -> None:
    """Drop your working set of a namespace (archived); chat goes back to plain retrieval."""
    cli = state(ctx)
    ws = cli.client().clear_working_set(namespace=namespace)
    emit(ws) if cli.json else print(f"cleared {ws.cube.id}" if ws.cube else f"no working set in {namespace}")
