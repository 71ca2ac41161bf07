"""CLI commands for parameter memory: ``consolidate`` plaintext into a LoRA adapter, ``recompile`` it,
and ``recall`` with adapters loaded (``archive``, back to plaintext, is derived from the registry)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import typer
from rich.table import Table

from memcubed.cube.model import MemCube
from memcubed.interfaces.cli.activation import Model, load_model
from memcubed.interfaces.cli.render import console, emit, with_progress
from memcubed.interfaces.cli.state import handle_errors, state

__all__ = ["consolidate", "recall", "recompile", "show_evaluation"]


def show_evaluation(cube: MemCube) -> None:
    """Print a parameter cube's training record and its recall before/after, per source and overall."""
    meta = cube.meta
    evaluation: dict[str, Any] = meta.get("evaluation", {})
    table = Table(title=f"recall with no context — {cube.id}")
    for column in ("set", "probes", "hits before", "hits after", "loss before", "loss after"):
        table.add_column(column)
    for source, row in evaluation.get("per_source", {}).items():
        table.add_row(source, str(row["probes"]), str(row["hits_before"]), str(row["hits_after"]),
                      f"{row['loss_before']:.3f}", f"{row['loss_after']:.3f}")
    for name in ("facts", "control"):
        part = evaluation.get(name)
        if part and part["before"]["probes"]:
            before, after = part["before"], part["after"]
            table.add_row(f"[bold]{name}[/]", str(before["probes"]), f"{before['hits']} ({before['recall']:.0%})",
                          f"{after['hits']} ({after['recall']:.0%})", f"{before['mean_loss']:.3f}",
                          f"{after['mean_loss']:.3f}")
    console.print(table)
    control = evaluation.get("control", {})
    console.print(f"rank {meta.get('rank')}, alpha {meta.get('alpha')}, {meta.get('pairs')} pairs, "
                  f"{meta.get('epochs')} epochs in {meta.get('train_s')} s ({meta.get('epoch_s')} s/epoch), "
                  f"loss {meta.get('loss_curve', [0])[0]:.3f} → {meta.get('loss_curve', [0])[-1]:.3f}, "
                  f"{meta.get('bytes', 0) / 1e6:.1f} MB; control drift {control.get('drift_points', 0):+.1f} points",
                  style="dim")
    verdict = meta.get("gate")
    if isinstance(verdict, dict):
        console.print(f"gate: {'passed, served' if verdict['passed'] else 'failed, stored inactive'} (recall "
                      f"{verdict['recall']:.2f} ≥ {verdict['recall_min']:.2f}, {verdict['drift_points_lost']:+.1f} "
                      f"points lost ≤ {verdict['drift_max']:.1f})" + "".join(f"; {r}" for r in verdict["reasons"]))


@handle_errors
def consolidate(ctx: typer.Context, cube_ids: list[str], model: Model = None,
                epochs: Annotated[int | None, typer.Option(help="passes over the training pairs")] = None,
                rank: Annotated[int | None, typer.Option(help="LoRA rank")] = None,
                rehearsal: Annotated[int | None, typer.Option(help="general prompts trained with the model's own "
                                                              "answers, to keep its behaviour (0..24)")] = None,
                control: Annotated[bool, typer.Option(help="measure drift on the built-in control set")] = True,
                recall_min: Annotated[float | None, typer.Option(help="gate: fact recall needed to serve the "
                                                                 "adapter (0..1)")] = None,
                drift_max: Annotated[float | None, typer.Option(help="gate: most control points the adapter may "
                                                                "lose")] = None,
                ) -> None:
    """Train a LoRA adapter on plaintext cubes (a parameter cube) and print recall before and after; an adapter
    that fails the gate is stored inactive (never served)."""
    cli = state(ctx)
    client = cli.client()
    load_model(client, model)
    config = {k: v for k, v in (("epochs", epochs), ("rank", rank), ("rehearsal", rehearsal),
                                ("recall_min", recall_min), ("drift_max", drift_max)) if v is not None}
    cube = with_progress("consolidating", partial(client.consolidate, cube_ids, model=model, config=config,
                                                          control=None if control else []))
    if cli.json:
        emit(cube)
    else:
        print(cube.id)
        show_evaluation(cube)


@handle_errors
def recompile(ctx: typer.Context, cube_id: str, model: Model = None) -> None:
    """Build an activation or parameter cube again from its sources' current versions (deleted or forgotten
    ones left out)."""
    cli = state(ctx)
    client = cli.client()
    load_model(client, model)
    cube = with_progress("retraining", partial(client.recompile, cube_id, model=model))
    if cli.json:
        emit(cube)
    else:
        print(f"{cube.id} v{cube.version}")
        show_evaluation(cube)


@handle_errors
def recall(ctx: typer.Context, query: str, model: Model = None,
           adapter: Annotated[list[str] | None, typer.Option(help="parameter cube to load (repeatable)")] = None,
           max_new_tokens: Annotated[int, typer.Option(help="tokens to generate")] = 64) -> None:
    """Answer a question with no context, with parameter cubes' adapters loaded into the model."""
    cli = state(ctx)
    client = cli.client()
    load_model(client, model)
    result = client.generate_with_adapters(query, adapter or [], model=model, max_new_tokens=max_new_tokens)
    if cli.json:
        emit(result)
        return
    print(result.text)
    console.print(f"adapters: {', '.join(result.adapters) or 'none'} (loaded in {result.load_ms:.0f} ms);"
                  f" {result.total_ms:.0f} ms", style="dim")
