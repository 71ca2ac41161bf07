"""CLI commands for the working set: ``memcubed working-set set|clear`` (one kernel operation each; ``show`` is
derived from the registry)."""

from __future__ import annotations

from typing import Annotated

import typer

from memcubed.interfaces.cli.activation import Model, load_model
from memcubed.interfaces.cli.render import emit, show_working_set
from memcubed.interfaces.cli.state import handle_errors, state

__all__ = ["working_set_app"]

working_set_app = typer.Typer(help="Your working set per namespace: hot memories kept as one exact KV prefix that "
                                   "chat puts first.", no_args_is_help=True)

Namespace = Annotated[str, typer.Option("--namespace", "-n", help="memory space")]


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
    emit(ws) if cli.json else show_working_set(ws)


@working_set_app.command("clear")
@handle_errors
def clear_working_set(ctx: typer.Context, namespace: Namespace = "default") -> None:
    """Drop your working set of a namespace (archived); chat goes back to plain retrieval."""
    cli = state(ctx)
    ws = cli.client().clear_working_set(namespace=namespace)
    emit(ws) if cli.json else print(f"cleared {ws.cube.id}" if ws.cube else f"no working set in {namespace}")
