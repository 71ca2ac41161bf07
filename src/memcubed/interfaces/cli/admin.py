"""CLI commands for the audit log and principals."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated

import typer

from memcubed.interfaces.api import migrate_store
from memcubed.interfaces.cli.render import emit, show_principals, with_progress
from memcubed.interfaces.cli.state import handle_errors, state
from memcubed.schemas.ops import PrincipalPublic
from memcubed.settings import Settings

__all__ = ["audit_app", "migrate", "principal_app"]

audit_app = typer.Typer(help="Read and verify the tamper-evident audit log.", no_args_is_help=True)
principal_app = typer.Typer(help="Manage principals (users, agents, services).", no_args_is_help=True)


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
        for note in report.notes:
            print(f"  note: {note}")
    if not report.ok:
        raise typer.Exit(1)


@principal_app.command("create")
@handle_errors
def principal_create(ctx: typer.Context, name: str,
                     kind: Annotated[str, typer.Option(help="user, agent or service")] = "user",
                     admin: Annotated[bool, typer.Option("--admin", help="grant every right")] = False,
                     label: Annotated[str, typer.Option(help="a label for its first API key")] = "") -> None:
    """Register a principal (administrators only) and print its first API key, shown this once."""
    cli = state(ctx)
    client = cli.client()
    created = client.create_principal(name, kind=kind, is_admin=admin)
    issued = client.create_api_key(created.name, label=label)
    if cli.json:
        emit({"principal": created.model_dump(mode="json"), "key": issued.model_dump(mode="json")})
    else:
        print(f"created {created.kind} {created.name}")
        print(f"API key (shown once, store it now): {issued.key}")


@principal_app.command("show")
@handle_errors
def principal_show(ctx: typer.Context,
                   name: Annotated[str | None, typer.Argument(help="whom (default: yourself)")] = None) -> None:
    """Show one principal: yourself, or anyone for administrators."""
    cli = state(ctx)
    found = cli.client().get_principal(name)
    emit(found) if cli.json else show_principals([found])


@principal_app.command("create-key")
@handle_errors
def principal_create_key(ctx: typer.Context, name: str,
                         label: Annotated[str, typer.Option(help="tells this key apart from others")] = "",
                         scope: Annotated[str, typer.Option(help="read, write or admin")] = "admin",
                         expires: Annotated[datetime | None, typer.Option(
                             help="refuse the key from this UTC time on", formats=["%Y-%m-%dT%H:%M:%S",
                                                                                    "%Y-%m-%d"])] = None) -> None:
    """Issue another API key for a principal (yourself, or anyone for administrators); shown once."""
    cli = state(ctx)
    issued = cli.client().create_api_key(name, label=label, scope=scope,
                                         expires_at=None if expires is None else expires.replace(tzinfo=UTC))
    emit(issued) if cli.json else print(f"API key {issued.key_id} for {issued.principal} (shown once): {issued.key}")


@principal_app.command("set-admin")
@handle_errors
def principal_set_admin(ctx: typer.Context, name: str,
                        admin: Annotated[bool, typer.Option("--admin/--no-admin", help="promote or demote")] = True
                        ) -> None:
    """Promote a principal to administrator (--admin) or demote it (--no-admin); never the last one."""
    _show_principal(ctx, state(ctx).client().set_admin(name, admin), "promoted" if admin else "demoted")


def _show_principal(ctx: typer.Context, found: PrincipalPublic, done: str) -> None:
    emit(found) if state(ctx).json else print(f"{done} {found.name}")


@principal_app.command("reset-admin")
@handle_errors
def principal_reset_admin(ctx: typer.Context) -> None:
    """Revoke every live key of the administrator and issue one new key, shown once (audited)."""
    cli = state(ctx)
    client = cli.client()
    issued = client.kernel.reset_admin_key(principal=client.principal)
    emit(issued) if cli.json else print(f"admin API key {issued.key_id} (shown once, store it now): {issued.key}")


@handle_errors
def migrate(ctx: typer.Context,
            source: Annotated[str, typer.Option("--from", help="the store to copy: SQLite file or postgresql:// DSN")],
            target: Annotated[str, typer.Option("--to", help="a new, empty store: a SQLite file or postgresql:// DSN")],
            ) -> None:
    """Copy a whole store to another location or backend (versions, ACL, blobs, audit chain), then verify it;
    exits 1 when verification finds a difference."""
    cli = state(ctx)
    report = with_progress("copying cubes", partial(migrate_store, source, target, settings=Settings()))
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
