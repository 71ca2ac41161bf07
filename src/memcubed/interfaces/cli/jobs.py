"""CLI commands for background jobs: submit, wait (with a progress bar), cancel (``list`` and ``show`` are derived
from the registry)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from memcubed.errors import ValidationError
from memcubed.interfaces.cli.render import emit, progress_bar, show_jobs
from memcubed.interfaces.cli.state import handle_errors, state

__all__ = ["jobs_app"]

jobs_app = typer.Typer(help="Background jobs (cache, consolidate): watch, wait for, cancel.", no_args_is_help=True)


@jobs_app.command("submit")
@handle_errors
def jobs_submit(ctx: typer.Context, kind: Annotated[str, typer.Argument(help="cache or consolidate")],
                params: Annotated[str, typer.Argument(help='the params as a JSON object, e.g. '
                                                           '\'{"cube_ids": ["..."], "model": "local"}\'')] = "{}"
                ) -> None:
    """Queue long work of any job kind for `memcubed worker` (or a server's workers) and print the job."""
    cli = state(ctx)
    try:
        parsed = json.loads(params)
    except ValueError as exc:
        raise ValidationError(f"params must be a JSON object: {exc}", field="params") from exc
    if not isinstance(parsed, dict):
        raise ValidationError("params must be a JSON object", field="params")
    job = cli.client().submit_job(kind, **parsed)
    emit(job) if cli.json else print(f"queued job {job.id}; follow it with: memcubed jobs wait {job.id}")


@jobs_app.command("wait")
@handle_errors
def jobs_wait(ctx: typer.Context, job_id: str,
              timeout: Annotated[float, typer.Option(help="give up after this many seconds")] = 3600.0) -> None:
    """Follow a job's progress until it ends; exits 1 unless it succeeded."""
    cli = state(ctx)
    client = cli.client()
    deadline = time.monotonic() + timeout
    with progress_bar() as bar:
        job = client.job(job_id)
        task = bar.add_task(f"{job.kind} {job.id[:13]}", total=job.total or None)
        while not job.state.finished and time.monotonic() < deadline:
            bar.update(task, completed=job.done, total=job.total or None, description=f"{job.kind} {job.state}")
            time.sleep(0.2)
            job = client.job(job_id)
        bar.update(task, completed=job.done, total=job.total or None, description=f"{job.kind} {job.state}")
    emit(job) if cli.json else show_jobs([job])
    if job.state.value != "succeeded":
        raise typer.Exit(1)


@jobs_app.command("cancel")
@handle_errors
def jobs_cancel(ctx: typer.Context, job_id: str) -> None:
    """Cancel a job: a queued one never starts, a running one stops at its next step and keeps nothing."""
    cli = state(ctx)
    job = cli.client().cancel_job(job_id)
    emit(job) if cli.json else print(f"job {job.id}: {job.state.value}"
                                     f"{' (stopping)' if job.cancel_requested and not job.state.finished else ''}")
