"""CLI commands of the job machinery: ``memcubed worker`` (every job kind, leased) and ``memcubed gc``."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Annotated

import typer

from memcubed.composition import job_worker, scheduler_loop
from memcubed.interfaces.cli.render import emit, show_jobs
from memcubed.interfaces.cli.state import handle_errors, state
from memcubed.schemas.jobs import JobRecord

__all__ = ["gc", "worker"]


def _report(job: JobRecord, done: int, total: int) -> None:
    """Progress and outcomes as lines on stderr (stdout stays for --json)."""
    if done < 0:
        outcome = job.error["code"] if job.error else "ok"
        line = f"job {job.id} {job.kind} attempt {job.attempts}: {job.state.value} ({outcome})"
    else:
        line = f"job {job.id} {job.kind} attempt {job.attempts}: {done}/{total}"
    print(line, file=sys.stderr, flush=True)


@handle_errors
def worker(ctx: typer.Context,
           once: Annotated[bool, typer.Option("--once", help="run what is claimable, then exit")] = False,
           kinds: Annotated[str | None, typer.Option("--kinds", help="comma-separated job kinds to take (default:"
                                                                     " every kind, e.g. cache,consolidate)")] = None,
           poll: Annotated[float, typer.Option(help="seconds between polls of an empty queue")] = 1.0,
           gc: Annotated[bool, typer.Option(help="collect unreferenced blobs every blob_gc_interval_s while "
                                                 "idle")] = True,
           scheduler: Annotated[bool, typer.Option(help="also run the scheduler loop here (when scheduler_enabled;"
                                                        " `serve` runs it by default)")] = False) -> None:
    """Run jobs of every kind from this store (any number of workers may share it); SIGTERM or Ctrl-C gives
    the running job back to the queue at its next step and exits."""
    cli = state(ctx)
    wanted = [k.strip() for k in kinds.split(",") if k.strip()] if kinds else None
    runner = job_worker(cli.client().kernel, poll_s=poll, kinds=wanted, report=_report, gc=gc and not once)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        print(f"worker {runner.name}: signal {signum}, giving the running job back", file=sys.stderr, flush=True)
        runner.request_stop()

    main = threading.current_thread() is threading.main_thread()
    before = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)} if main else {}
    try:
        if once:
            ran = runner.run_pending()
            emit(ran) if cli.json else show_jobs(ran)
            return
        print(f"worker {runner.name} running kinds {wanted or 'all'}; SIGTERM or Ctrl-C stops it", file=sys.stderr,
              flush=True)
        ticker = scheduler_loop(cli.client().kernel) if scheduler else None
        if ticker is not None:
            print(f"scheduler ticking every {ticker.interval_s:g} s", file=sys.stderr, flush=True)
            ticker.start()
        runner.start()
        try:
            runner.wait()
        finally:
            if ticker is not None:
                ticker.stop(timeout=5)
    finally:
        for sig, handler in before.items():  # an embedding process (a test runner) gets its own handlers back
            signal.signal(sig, handler)


@handle_errors
def gc(ctx: typer.Context,
       dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be collected, delete nothing")] = False,
       grace: Annotated[float | None, typer.Option(help="keep blobs younger than this many seconds (default: "
                                                        "blob_gc_grace_s)")] = None,
       retention: Annotated[float | None, typer.Option(help="purge cubes deleted longer ago than this many seconds"
                                                            " first (default: deleted_retention_s)")] = None) -> None:
    """Purge deleted cubes past their retention, then remove tensor blobs no live cube uses, once older than
    the grace period (administrators)."""
    cli = state(ctx)
    report = cli.client().collect_garbage(dry_run=dry_run, grace_s=grace, retention_s=retention)
    if cli.json:
        emit(report)
        return
    verb = "would purge" if report.dry_run else "purged"
    print(f"{verb} {len(report.purged)} cubes deleted more than {report.retention_s:g} s ago")
    for cube_id in report.purged:
        print(f"  {cube_id}")
    verb = "would collect" if report.dry_run else "collected"
    print(f"{verb} {report.collected} blobs ({report.bytes} bytes) of {report.blobs}; {report.referenced} in use,"
          f" {report.young} younger than {report.grace_s:g} s")
    for digest in report.digests:
        print(f"  {digest}")
