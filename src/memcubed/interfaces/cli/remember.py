"""``memcubed remember`` (conversation turns from a JSON file or stdin) and ``memcubed extract``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from memcubed.errors import NotFound, ValidationError
from memcubed.interfaces.cli.render import emit
from memcubed.interfaces.cli.state import handle_errors, state
from memcubed.schemas.remember import RememberResult

__all__ = ["extract", "remember"]


@handle_errors
def remember(ctx: typer.Context,
             path: Annotated[str, typer.Argument(help="a JSON file of turns ('-': stdin): a list of turns, or an "
                                                      "object with 'turns' (and optionally 'namespace')")] = "-",
             namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="memory space")] = None,
             no_extract: Annotated[bool, typer.Option("--no-extract", help="store the turns only")] = False) -> None:
    """Remember conversation turns (speaker, role, text, time, conversation_id, session_id, turn_id)."""
    cli = state(ctx)
    raw = _read(path)
    body: dict[str, Any] = {"turns": raw} if isinstance(raw, list) else raw if isinstance(raw, dict) else {}
    if not body:
        raise ValidationError("the input must be a JSON list of turns or an object with 'turns'", field="turns")
    if namespace is not None:
        body["namespace"] = namespace
    if no_extract:
        body["extract"] = False
    unknown = sorted(set(body) - {"turns", "namespace", "extract"})
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]!r}: use turns, namespace, extract", field=unknown[0])
    result = cli.client().remember(body["turns"], namespace=body.get("namespace", "default"),
                                   extract=body.get("extract", True))
    emit(result) if cli.json else _show(result)


@handle_errors
def extract(ctx: typer.Context, cube_ids: Annotated[list[str], typer.Argument(help="turn cube ids")]) -> None:
    """Extract and resolve facts from your remembered turns (what a failed extraction's retry job runs)."""
    cli = state(ctx)
    result = cli.client().extract(cube_ids)
    emit(result) if cli.json else _show(result)


def _read(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NotFound(f"cannot read {path}: {exc}", path=path) from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{path} is not JSON: {exc}", path=path) from exc


def _show(result: RememberResult) -> None:
    added = sum(1 for t in result.turns if t.action == "added")
    print(f"turns: {added} added, {len(result.turns) - added} already known or duplicates")
    if result.extracted:
        print("facts: " + ", ".join(f"{k} {v}" for k, v in result.counts.items()))
    else:
        print(f"facts: not extracted ({result.reason})")
    for fact in result.facts:
        print(f"  {fact.action:<10} {fact.statement}")
