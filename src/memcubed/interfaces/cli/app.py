"""The ``memcubed`` command line: one command per kernel operation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from memcubed.cube.model import CubeKind, CubeState, MemCube
from memcubed.interfaces.cli import (
    activation,
    admin,
    bulk,
    bundle,
    jobs,
    parameter,
    plan,
    scheduler,
    serve,
    worker,
    workset,
)
from memcubed.interfaces.cli import reembed as reembed_cli
from memcubed.interfaces.cli import remember as remember_cli
from memcubed.interfaces.cli.render import emit, show_cube, show_history, show_search
from memcubed.interfaces.cli.state import CliState, handle_errors, state
from memcubed.schemas.ops import SearchMode

__all__ = ["app", "main"]

app = typer.Typer(help="memcubed: a memory operating system for LLM applications and agents.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(admin.audit_app, name="audit")
app.add_typer(admin.principal_app, name="principal")
app.add_typer(bulk.demo_app, name="demo")
app.command("import")(bundle.import_file)
app.command("export")(bundle.export)
app.command("cache")(activation.cache)
app.command("chat")(activation.chat)
app.command("generate")(activation.generate)
app.command("migrate")(admin.migrate)
app.add_typer(jobs.jobs_app, name="jobs")
app.command("worker")(worker.worker)
app.command("gc")(worker.gc)
app.command("reembed")(reembed_cli.reembed)
app.command("serve")(serve.serve)
app.add_typer(scheduler.scheduler_app, name="scheduler")
app.command("mcp")(serve.mcp)
app.command("consolidate")(parameter.consolidate)
app.command("recompile")(parameter.recompile)
app.command("archive")(parameter.archive)
app.command("recall")(parameter.recall)
app.add_typer(plan.plan_app, name="plan")
app.add_typer(workset.working_set_app, name="working-set")
app.command("remember")(remember_cli.remember)
app.command("extract")(remember_cli.extract)

Tags = Annotated[list[str] | None, typer.Option("--tag", "-t", help="a label (repeatable)")]
Namespace = Annotated[str, typer.Option("--namespace", "-n", help="memory space")]


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option("--db", "--store", envvar="MEMCUBED_DB",
                                           help="the store: a SQLite file or a postgresql:// DSN")] = None,
    principal: Annotated[str | None, typer.Option(envvar="MEMCUBED_PRINCIPAL", help="acting principal")] = None,
    embedder: Annotated[str | None, typer.Option(envvar="MEMCUBED_EMBEDDER",
                                                 help="none | local | local:<model> | static | static:<folder> |"
                                                 " openai:<model>; unset: the store's own (a new store: the"
                                                 " default)")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable JSON output")] = False,
) -> None:
    """Global options, given before the command."""
    cli = CliState(db=db, principal=principal, embedder=embedder, json=json_output)
    ctx.obj = cli
    ctx.call_on_close(cli.close)


@app.command()
@handle_errors
def init(ctx: typer.Context) -> None:
    """Create the store named by --db (a SQLite file, mode 0600, in an existing folder; or the schema in a
    PostgreSQL database). Every other command but serve and demo refuses a store that does not exist."""
    cli = state(ctx)
    client = cli.client(create=True)
    where = serve._redacted(cli.db or client.kernel.settings.db)
    emit({"store": where}) if cli.json else print(f"store ready: {where}")


@app.command()
@handle_errors
def add(ctx: typer.Context, text: str, namespace: Namespace = "default", tags: Tags = None,
        importance: Annotated[float, typer.Option(help="0..1")] = 0.5,
        source_type: Annotated[str, typer.Option(help="provenance type")] = "cli",
        source_uri: Annotated[str | None, typer.Option(help="provenance URI")] = None) -> None:
    """Store a plaintext memory."""
    cli = state(ctx)
    cube = cli.client().add(text, namespace=namespace, tags=tags or [], importance=importance,
                            source={"type": source_type, "uri": source_uri})
    emit(cube) if cli.json else print(cube.id)


@app.command()
@handle_errors
def get(ctx: typer.Context, cube_id: str,
        version: Annotated[int | None, typer.Option(help="read this version")] = None,
        as_of: Annotated[datetime | None, typer.Option(help="read the state at this UTC time (as known then)")] = None,
        true_at: Annotated[datetime | None, typer.Option(help="only if it held at this UTC time (event time)")]
        = None) -> None:
    """Show a cube (current, a version, or as of a time; with --true-at only if it held then)."""
    cli = state(ctx)
    client = cli.client()
    cube = client.get_version(cube_id, version).cube if version is not None else \
        client.get(cube_id, as_of=_utc(as_of), true_at=_utc(true_at))
    emit(cube) if cli.json else show_cube(cube)


@app.command()
@handle_errors
def update(ctx: typer.Context, cube_id: str,
           text: Annotated[str | None, typer.Option(help="new text")] = None,
           importance: Annotated[float | None, typer.Option(help="0..1")] = None, tags: Tags = None,
           expected_version: Annotated[int | None, typer.Option(help="fail unless the cube is at this version")]
           = None) -> None:
    """Change a cube, writing a new version."""
    cli = state(ctx)
    fields: dict[str, Any] = {k: v for k, v in (("text", text), ("importance", importance), ("tags", tags))
                              if v is not None}
    cube = cli.client().update(cube_id, expected_version=expected_version, **fields)
    emit(cube) if cli.json else print(f"{cube.id} v{cube.version}")


def _cube_command(op: str, done: str, doc: str) -> None:
    """Register ``memcubed <op> CUBE_ID``: one kernel operation on one cube, printing what became of it."""
    def command(ctx: typer.Context, cube_id: str) -> None:
        cli = state(ctx)
        cube: MemCube = getattr(cli.client(), op)(cube_id)
        emit(cube) if cli.json else print(f"{cube.id} {done} (v{cube.version})")

    command.__doc__ = doc
    app.command(op)(handle_errors(command))


_cube_command("delete", "deleted", "Soft-delete a cube (its history stays readable).")
_cube_command("forget", "forgotten",
              "Purge a cube's text and embeddings from every version; a tombstone and the audit trail remain.")
_cube_command("undelete", "active again", "Bring a soft-deleted (not forgotten) cube back to active.")
_cube_command("restore", "active again", "Bring an archived plaintext cube back to active.")


@app.command()
@handle_errors
def search(ctx: typer.Context, query: str, namespace: Namespace = "default",
           k: Annotated[int, typer.Option("-k", help="number of hits")] = 10,
           mode: Annotated[SearchMode, typer.Option(help="hybrid, lexical or vector")] = SearchMode.HYBRID,
           tags: Tags = None, owner: Annotated[str | None, typer.Option(help="only this owner's cubes")] = None,
           kind: Annotated[list[CubeKind] | None, typer.Option(help="only these kinds")] = None,
           true_at: Annotated[datetime | None, typer.Option(help="only what held at this UTC time (event time)")]
           = None,
           as_known_at: Annotated[datetime | None, typer.Option(help="as stored at this UTC time (record time)")]
           = None,
           question_date: Annotated[datetime | None, typer.Option(help="when the question is asked: ranks the time "
                                                                       "it names first (\"last week\")")] = None,
           ) -> None:
    """Hybrid search over the memories you may read (optionally as known at, or true at, a time)."""
    cli = state(ctx)
    filters: dict[str, Any] = {k2: v for k2, v in (("tags", tags), ("owner", owner), ("kinds", kind),
                                                   ("true_at", _utc(true_at)), ("as_known_at", _utc(as_known_at)))
                               if v}
    result = cli.client().search(query, namespace=namespace, k=k, mode=mode, filters=filters,
                                 question_date=_utc(question_date))
    emit(result) if cli.json else show_search(result)


@app.command("list")
@handle_errors
def list_cubes(ctx: typer.Context, namespace: Namespace = "default", tags: Tags = None,
               owner: Annotated[str | None, typer.Option(help="only this owner's cubes")] = None,
               kind: Annotated[list[CubeKind] | None, typer.Option(help="only these kinds")] = None,
               state_: Annotated[list[CubeState] | None, typer.Option("--state", help="these states (default "
                                                                                       "active)")] = None,
               limit: Annotated[int, typer.Option(help="cubes per page")] = 100,
               offset: Annotated[int, typer.Option(help="skip this many cubes")] = 0) -> None:
    """List the cubes of a namespace you may read, newest first."""
    cli = state(ctx)
    filters: dict[str, Any] = {k2: v for k2, v in (("tags", tags), ("owner", owner), ("kinds", kind),
                                                   ("states", state_)) if v}
    cubes = cli.client().list_cubes(namespace=namespace, filters=filters, limit=limit, offset=offset)
    if cli.json:
        emit(cubes)
        return
    for cube in cubes:
        print(f"{cube.id}  {cube.kind.value:<10} {cube.state.value:<8} v{cube.version}  {(cube.text or '')[:60]}")


@app.command()
@handle_errors
def history(ctx: typer.Context, cube_id: str,
            limit: Annotated[int, typer.Option(help="versions per page")] = 100,
            offset: Annotated[int, typer.Option(help="skip this many versions")] = 0) -> None:
    """List a cube's versions, oldest first."""
    cli = state(ctx)
    entries = cli.client().history(cube_id, limit=limit, offset=offset)
    emit(entries) if cli.json else show_history(entries)


@app.command()
@handle_errors
def share(ctx: typer.Context, cube_id: str, principal: str,
          right: Annotated[str, typer.Option(help="read, write, share or admin")] = "read") -> None:
    """Grant a right on a cube to another principal."""
    cli = state(ctx)
    cube = cli.client().share(cube_id, principal, right)
    emit(cube) if cli.json else print(f"{principal} may {right} {cube.id} (v{cube.version})")


@app.command()
@handle_errors
def revoke(ctx: typer.Context, cube_id: str, principal: str) -> None:
    """Remove a principal's rights on a cube."""
    cli = state(ctx)
    cube = cli.client().revoke(cube_id, principal)
    emit(cube) if cli.json else print(f"{principal} has no rights on {cube.id} (v{cube.version})")


@app.command()
@handle_errors
def accept(ctx: typer.Context, cube_id: str) -> None:
    """Accept a cube shared with you: from now on it may enter your chat retrieval."""
    cli = state(ctx)
    cube = cli.client().accept_share(cube_id)
    emit(cube) if cli.json else print(f"accepted {cube.id}")


@app.command()
@handle_errors
def decline(ctx: typer.Context, cube_id: str) -> None:
    """Decline (or give up) a cube shared with you: your grant is removed."""
    cli = state(ctx)
    cube = cli.client().decline_share(cube_id)
    emit(cube) if cli.json else print(f"declined {cube.id}")


def _utc(value: datetime | None) -> datetime | None:
    """Typer parses naive datetimes; the CLI reads them as UTC."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def main() -> None:
    """Entry point of the ``memcubed`` script."""
    app()

