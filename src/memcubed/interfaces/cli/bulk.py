"""Bulk work with progress bars: JSONL import and the LoCoMo demo."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from memcubed.cube.ids import owned_cube_id
from memcubed.datasets.locomo import CATEGORIES, Conversation, load_locomo
from memcubed.errors import NotFound, ValidationError
from memcubed.interfaces.api import Memcubed
from memcubed.interfaces.cli.render import console, emit, progress_bar
from memcubed.interfaces.cli.state import handle_errors, state
from memcubed.kernel.validation import parse
from memcubed.schemas.ops import CubeCreate

__all__ = ["demo_app", "import_jsonl", "import_locomo"]

demo_app = typer.Typer(help="Self-contained demonstrations.", no_args_is_help=True)


@handle_errors
def import_jsonl(ctx: typer.Context, path: Path,
                 batch: Annotated[int, typer.Option(help="memories per atomic batch")] = 256) -> None:
    """Import memories from JSONL (one ``add`` object per line); every line is checked before any write."""
    cli = state(ctx)
    items: list[CubeCreate] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise NotFound(f"cannot read {path}: {exc}", path=str(path)) from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            items.append(parse(CubeCreate, data if isinstance(data, dict) else {"text": data}))
        except (ValueError, ValidationError) as exc:
            raise ValidationError(f"{path}:{number}: {exc}", line=number) from exc
    client = cli.client()
    added = _add_with_progress(client, items, batch, "importing")
    emit({"imported": added}) if cli.json else print(f"imported {added} memories from {path}")


def _add_with_progress(client: Memcubed, items: list[Any], batch: int, label: str) -> int:
    with progress_bar() as bar:
        task = bar.add_task(label, total=len(items))
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            client.add_many(chunk)
            bar.advance(task, len(chunk))
    return len(items)


def _namespace(conv: Conversation) -> str:
    return f"locomo-{conv.sample_id}"


def _turn_id(conv: Conversation, dia_id: str) -> str:
    """A stable key per turn, so importing twice is detected instead of duplicating (the kernel stores it
    scoped to the importing principal: see ``owned_cube_id``)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"locomo:{conv.sample_id}:{dia_id}"))


def import_locomo(client: Memcubed, conversations: list[Conversation]) -> int:
    """Import the conversations not imported yet (one memory per turn, stable ids), with a progress bar.

    Returns:
        How many memories were added (0 when every conversation was there already).
    """
    pending = []
    for conv in conversations:
        try:
            client.get(owned_cube_id(client.principal, _turn_id(conv, conv.turns[0].dia_id)))
        except NotFound:
            pending.append(conv)
    items = [{**memory, "id": _turn_id(conv, memory["source"]["ref"])}
             for conv in pending for memory in conv.memories(_namespace(conv))]
    if not items:
        return 0
    return _add_with_progress(client, items, 128, f"importing {len(pending)} LoCoMo conversations")


@demo_app.command("locomo")
@handle_errors
def demo_locomo(ctx: typer.Context, path: Path,
                questions: Annotated[int, typer.Option(help="questions per category to answer")] = 2,
                k: Annotated[int, typer.Option("-k", help="hits per question")] = 5) -> None:
    """Import LoCoMo conversations (once) and answer some of their questions with hybrid search."""
    cli = state(ctx)
    conversations = load_locomo(path)
    client = cli.client(create=True)  # the demo sets up its own store (`make demo` on a fresh clone)
    import_locomo(client, conversations)
    total_turns = sum(len(c.turns) for c in conversations)
    console.print(f"[bold]{total_turns}[/] turns from {len(conversations)} conversations in {cli.db or 'the store'}")
    found = wanted = 0
    for conv in conversations[:1]:
        for category in sorted(c for c in CATEGORIES if c != 5):
            asked = [q for q in conv.questions if q.category == category and q.evidence][:questions]
            for q in asked:
                result = client.search(q.question, namespace=_namespace(conv), k=k)
                refs = [hit.cube.source.ref for hit in result.hits]
                hit_count = len(set(refs) & set(q.evidence))
                found, wanted = found + hit_count, wanted + len(q.evidence)
                table = Table(title=f"[{CATEGORIES[category]}] {q.question}  (gold: {q.answer}; evidence "
                              f"{', '.join(q.evidence)}; {result.total_ms:.0f} ms)", title_justify="left")
                for column in ("#", "ref", "evidence", "signals", "text"):
                    table.add_column(column)
                for rank, hit in enumerate(result.hits, start=1):
                    signals = " ".join(f"{n}#{s.rank}" for n, s in sorted(hit.signals.items()))
                    table.add_row(str(rank), hit.cube.source.ref or "", "✓" if hit.cube.source.ref in q.evidence
                                  else "", signals, (hit.cube.text or "")[:100])
                console.print(table)
    console.print(f"evidence found in the top {k}: {found}/{wanted}")
