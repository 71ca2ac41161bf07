"""The ``memcubed`` command line: one command per kernel operation (the plain ones derived from the registry by
:mod:`memcubed.interfaces.cli.derive`, the others written in their modules)."""

from __future__ import annotations

from typing import Annotated

import typer

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
from memcubed.interfaces.cli.derive import add_commands
from memcubed.interfaces.cli.render import emit
from memcubed.interfaces.cli.state import CliState, handle_errors, state
from memcubed.kernel.registry import OPERATIONS

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
app.command("recall")(parameter.recall)
app.add_typer(plan.plan_app, name="plan")
app.add_typer(workset.working_set_app, name="working-set")
app.command("remember")(remember_cli.remember)
app.command("extract")(remember_cli.extract)
add_commands(app, OPERATIONS, {"audit": admin.audit_app, "principal": admin.principal_app, "jobs": jobs.jobs_app,
                              "scheduler": scheduler.scheduler_app, "working-set": workset.working_set_app})


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


def main() -> None:
    """Entry point of the ``memcubed`` script."""
    app()

