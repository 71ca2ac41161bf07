"""CLI commands for the audit log and principals."""

from __future__ import annotations

from typing import Annotated

import typer

from memcubed.interfaces.api import migrate_store
from memcubed.interfaces.cli.render import emit, progress_bar, show_audit, show_principals
from memcubed.interfaces.cli.state import handle_errors, state
from memcubed.settings import Settings

__all__ = ["audit_app", "migrate", "principal_app"]

audit_app = typer.Typer(help="Read and verify the tamper-evident audit log.", no_args_is_help=True)
principal_app = typer.Typer(help="Manage principals (users, agents, services).", no_args_is_help=True)


@audit_app.command("log")
@handle_errors
def audit_log(ctx: typer.Context,
              cube: Annotated[str | None, typer.Option(help="only this cube's records")] = None,
              after: Annotated[int, typer.Option(help="records after this seq")] = 0,
              limit: Annotated[int, typer.Option(help="at most this many records")] = 1000) -> None:
    """List audit records in order."""
    cli = state(ctx)
    records = cli.client().audit(cube_id=cube, after_seq=after, limit=limit)
    emit(records) if cli.json else show_audit(records)


@audit_app.command("verify")
@handle_errors
def audit_verify(ctx: typer.Context) -> None:
    """Check the hash chain; exits 1 when any record was edited, removed or reordered."""
    cli = state(ctx)
    report = cli.client().verify_audit()
    if cli.json:
        emit(report)
    else:
        print(f"audit chain {'ok' if report.ok else 'BROKEN'}: {report.records} records")
        for problem in report.problems:
            print(f"  - {problem}")
    if not report.ok:
        raise typer.Exit(1)


@principal_app.command("create")
@handle_errors
def principal_create(ctx: typer.Context, name: str,
                     kind: Annotated[str, typer.Option(help="user, agent or service")] = "user",
                     admin: Annotated[bool, typer.Option("--admin", help="grant every right")] = False) -> None:
    """Register a principal (administrators only)."""
    cli = state(ctx)
    created = cli.client().create_principal(name, kind=kind, is_admin=admin)
    emit(created) if cli.json else print(f"created {created.kind} {created.name}")


@principal_app.command("list")
@handle_errors
def principal_list(ctx: typer.Context) -> None:
    """List principals (administrators only)."""
    cli = state(ctx)
    principals = cli.client().principals()
    emit(principals) if cli.json else show_principals(principals)


@handle_errors
def migrate(ctx: typer.Context,
            source: Annotated[str, typer.Option("--from", help="the store to copy: SQLite file or postgresql:// DSN")],
            target: Annotated[str, typer.Option("--to", help="a new, empty store: a SQLite file or postgresql:// DSN")],
            ) -> None:
    """Copy a whole store to another location or backend (versions, ACL, blobs, audit chain), then verify it;
    exits 1 when verification finds a difference."""
    cli = state(ctx)
    with progress_bar() as bar:
        task = bar.add_task("copying cubes", total=None)
        report = migrate_store(source, target, settings=Settings(),
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    if cli.json:
        emit(report)
    else:
        print(f"copied {report.cubes} cubes, {report.versions} versions, {report.audit_records} audit records,"
              f" {report.principals} principals, {report.blobs} blobs, {report.api_keys} API keys,"
              f" {report.jobs} jobs; verification {'ok' if report.ok else 'FAILED'}")
        for problem in report.problems:
            print(f"  - {problem}")
    if not report.ok:
        raise typer.Exit(1)
