"""CLI command ``reembed``: move a store to another embedder, as a durable job, with a progress bar."""

from __future__ import annotations

import os
import socket
from typing import Annotated

import typer

from memcubed.interfaces.cli.render import emit, progress_bar, show_jobs
from memcubed.interfaces.cli.state import handle_errors, state
from memcubed.schemas.jobs import JobRecord, JobState

__all__ = ["reembed"]


@handle_errors
def reembed(ctx: typer.Context,
            embedder: Annotated[str, typer.Argument(help="the new embedder's spec (local, static, static:<folder>,"
                                                         " local:<name or folder>, openai:<model>)")],
            batch: Annotated[int, typer.Option(help="cubes embedded per staged batch")] = 256,
            background: Annotated[bool, typer.Option("--background", help="only queue the job for `memcubed"
                                                     " worker` and print it")] = False) -> None:
    """Move the store to another embedder (administrators): every live cube is embedded again while search
    keeps the old vectors, then the store switches at once. Runs as a durable job: if this process dies, a
    `memcubed worker` finishes it."""
    cli = state(ctx)
    client = cli.client()
    job = client.submit_job("reembed", embedder=embedder, batch=batch)
    if background:
        emit(job) if cli.json else print(f"queued job {job.id}; follow it with: memcubed jobs wait {job.id}")
        return
    worker = f"cli-{socket.gethostname()}-{os.getpid()}"
    with progress_bar() as bar:
        task = bar.add_task(f"re-embedding with {embedder}", total=None)

        def report(running: JobRecord, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        ran = client.kernel.run_next_job(worker=worker, kinds=["reembed"], report=report)
    finished = client.job(job.id) if ran is None or ran.id != job.id else ran
    if cli.json:
        emit(finished)
    elif finished.state is JobState.SUCCEEDED:
        result = finished.result or {}
        print(f"switched to {result.get('embedder')} ({result.get('cubes')} cubes, {result.get('late')} embedded"
              " at the switch)" if result.get("switched") else f"already on {result.get('embedder')}: nothing to do")
    else:
        show_jobs([finished])
    if finished.state is not JobState.SUCCEEDED:
        raise typer.Exit(1)
