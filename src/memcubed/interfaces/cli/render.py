"""How the CLI shows results: JSON for machines, rich tables for people."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from memcubed.cube.model import MemCube
from memcubed.schemas.jobs import JobRecord
from memcubed.schemas.ops import AuditRecord, HistoryEntry, PrincipalPublic, SearchResult
from memcubed.schemas.scheduler import DecisionRecord
from memcubed.schemas.server import ApiKeyPublic
from memcubed.schemas.workset import WorkingSet

T = TypeVar("T")

__all__ = ["console", "emit", "progress_bar", "show_archived", "show_audit", "show_cube", "show_cube_lines",
           "show_decision_log", "show_decisions", "show_history", "show_job", "show_jobs", "show_keys",
           "show_principals", "show_search", "show_working_set"]

console = Console()


def emit(value: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    """Print ``value`` as JSON on stdout."""
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json")
    elif isinstance(value, dict):
        data = value
    else:
        data = [item.model_dump(mode="json") for item in value]
    print(json.dumps(data, ensure_ascii=False, indent=2))


def progress_bar() -> Progress:
    """A progress bar on stderr, so stdout stays parseable."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=False)


def with_progress(label: str, work: Callable[..., T]) -> T:
    """Call ``work(progress=...)`` with a ``(done, total)`` callback drawn as a bar labelled ``label`` on stderr."""
    with progress_bar() as bar:
        task = bar.add_task(label, total=None)
        return work(progress=lambda done, total: bar.update(task, completed=done, total=total))


def show_cube(cube: MemCube) -> None:
    """Print one cube as a two-column table."""
    table = Table(show_header=False, box=None)
    for name in ("id", "kind", "namespace", "owner", "version", "state", "importance", "tags", "created_at",
                 "updated_at", "source", "text"):
        value = getattr(cube, name)
        table.add_row(f"[bold]{name}[/]", _short(value))
    if cube.acl:
        table.add_row("[bold]acl[/]", ", ".join(f"{g.principal}:{g.right.name.lower()}" for g in cube.acl))
    console.print(table)


def show_archived(cube: MemCube) -> None:
    """Print an archived cube, then the sources it keeps."""
    show_cube(cube)
    print(f"{cube.id} archived (v{cube.version}); sources: {', '.join(r.id for r in cube.derived_from)}")


def show_cube_lines(cubes: Sequence[MemCube]) -> None:
    """Print one line per cube: id, kind, state, version and the start of its text."""
    for cube in cubes:
        print(f"{cube.id}  {cube.kind.value:<10} {cube.state.value:<8} v{cube.version}  {(cube.text or '')[:60]}")


def show_search(result: SearchResult) -> None:
    """Print search hits best first, with the signals that found each."""
    table = Table(title=f"{len(result.hits)} hits  (embed {result.embed_ms:.1f} ms, index {result.index_ms:.1f} ms)")
    for column in ("#", "score", "signals", "ref", "text"):
        table.add_column(column)
    for rank, hit in enumerate(result.hits, start=1):
        signals = " ".join(f"{name}#{s.rank}" for name, s in sorted(hit.signals.items()))
        table.add_row(str(rank), f"{hit.score:.4f}", signals, hit.cube.source.ref or hit.cube.id[:13],
                      _short(hit.cube.text, 90))
    console.print(table)


def show_history(entries: Sequence[HistoryEntry]) -> None:
    """Print a cube's versions."""
    table = Table()
    for column in ("version", "op", "actor", "at", "state", "text"):
        table.add_column(column)
    for e in entries:
        table.add_row(str(e.version), e.op, e.actor, e.at.isoformat(), e.cube.state.value, _short(e.cube.text, 60))
    console.print(table)


def show_audit(records: Sequence[AuditRecord]) -> None:
    """Print audit records."""
    table = Table()
    for column in ("seq", "at", "principal", "op", "cube", "version", "hash"):
        table.add_column(column)
    for r in records:
        table.add_row(str(r.seq), r.at.isoformat(), r.principal, r.op, r.cube_id or "", str(r.version or ""),
                      r.hash[:12])
    console.print(table)


def show_jobs(jobs: list[JobRecord]) -> None:
    """Print jobs as a table, newest first."""
    table = Table(title=f"{len(jobs)} jobs")
    for column in ("id", "kind", "principal", "state", "progress", "created", "outcome"):
        table.add_column(column)
    for job in jobs:
        outcome = job.error["message"] if job.error else (", ".join(f"{k}={v}" for k, v in (job.result or {}).items()))
        table.add_row(job.id, job.kind, job.principal, job.state.value, f"{job.done}/{job.total}",
                      job.created_at.strftime("%Y-%m-%d %H:%M:%S"), outcome)
    console.print(table)


def show_job(job: JobRecord) -> None:
    """Print one job as a table row."""
    show_jobs([job])


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


def show_decision_log(decisions: list[DecisionRecord]) -> None:
    """Print scheduler decisions, titled with how many."""
    show_decisions(decisions, f"{len(decisions)} decisions")


def show_working_set(ws: WorkingSet) -> None:
    """Print a working set: its cube, whether chat serves it, and its members."""
    if ws.cube is None:
        print(f"no working set in namespace {ws.namespace}")
        return
    status = "usable" if ws.usable else f"not served: {ws.reason}"
    print(f"working set {ws.cube.id} in {ws.namespace} ({ws.cube.state.value}, {status}): {len(ws.members)} "
          f"memories, {ws.tokens} tokens")
    for member in ws.members:
        print(f"  {member}")


def show_principals(principals: Sequence[PrincipalPublic]) -> None:
    """Print principals."""
    table = Table()
    for column in ("name", "kind", "admin", "created_at"):
        table.add_column(column)
    for p in principals:
        table.add_row(p.name, p.kind, "yes" if p.is_admin else "", p.created_at.isoformat())
    console.print(table)


def show_keys(keys: Sequence[ApiKeyPublic]) -> None:
    """Print API keys (never their secrets)."""
    table = Table()
    for column in ("key_id", "principal", "label", "created_at", "revoked_at"):
        table.add_column(column)
    for k in keys:
        table.add_row(k.key_id, k.principal, k.label, k.created_at.isoformat(),
                      k.revoked_at.isoformat() if k.revoked_at else "")
    console.print(table)


def _short(value: Any, width: int = 200) -> str:
    text = value.model_dump_json(exclude_none=True) if isinstance(value, BaseModel) else str(value)
    text = text.replace("[", "\\[")
    return text if len(text) <= width else text[: width - 1] + "…"
