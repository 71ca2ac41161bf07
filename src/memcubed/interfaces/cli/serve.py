"""``memcubed serve`` (REST + MCP over HTTP + chat proxy) and ``memcubed mcp`` (MCP over stdio)."""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

import typer

from memcubed.composition import job_worker
from memcubed.errors import DependencyMissing, MemcubedError
from memcubed.interfaces.api import Memcubed
from memcubed.interfaces.cli.state import handle_errors, state
from memcubed.kernel import ADMIN
from memcubed.settings import Settings

__all__ = ["mcp", "serve"]

_INSTALL = "pip install 'memcubed[server]'"


def _admin_key(client: Memcubed) -> str | None:
    """Issue the administrator's first API key if it has no live one; return it (or None if it had one)."""
    admin = client.as_principal(ADMIN)
    if any(key.revoked_at is None for key in admin.api_keys(ADMIN)):
        return None
    return admin.create_api_key(ADMIN, label="first start").key


def _limit_torch_threads(embedder: str, threads: int) -> None:
    """Give torch ``threads`` intra-op threads when a local model will run in this process.

    Requests run concurrently on the server's thread pool, each embedding its text: with torch's
    default of one thread per core they oversubscribe the cores, and OpenMP workers spin-waiting for a
    busy core turned a 20 ms ``add`` into ~1 s on a loaded 2-core machine (see NOTES.md, Server).
    """
    if threads > 0 and embedder.startswith("local") and importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(threads)


def _redacted(location: str) -> str:
    """A store location fit to print: a DSN's password replaced by ``***``."""
    parts = urlsplit(location)
    if not parts.scheme.startswith("postgres") or parts.password is None:
        return location
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _demo_import(client: Memcubed, path: Path) -> None:
    """Import the LoCoMo demo conversations in the background (progress bar on stderr); never fatal."""
    from memcubed.datasets.locomo import load_locomo
    from memcubed.interfaces.cli.bulk import import_locomo

    try:
        import_locomo(client.as_principal(ADMIN), load_locomo(path))
    except MemcubedError as exc:
        print(f"demo import skipped: [{exc.code}] {exc.message}", file=sys.stderr)


@handle_errors
def serve(ctx: typer.Context,
          host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port")] = 8000,
          demo: Annotated[Path | None, typer.Option(help="LoCoMo JSON to import in the background "
                                                         "(once; conversations already there are skipped)")] = None,
          torch_threads: Annotated[int, typer.Option(help="torch intra-op threads for local models "
                                                          "(0: torch's default)")] = 1,
          workers: Annotated[int, typer.Option(help="job worker threads in this process (0: another process "
                                                    "runs the queued jobs)")] = 1,
          threads: Annotated[int, typer.Option(min=1, help="threads running kernel calls")] = 64,
          log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "warning") -> None:
    """Serve the REST API, MCP (streamable HTTP at /mcp) and the OpenAI-compatible chat proxy (/v1).

    On the first start the administrator gets an API key, printed once.
    """
    try:
        import uvicorn

        from memcubed.interfaces.rest import create_app
    except ImportError as exc:
        raise DependencyMissing(f"the server needs its extra: {_INSTALL}", missing=exc.name) from exc
    cli = state(ctx)
    _limit_torch_threads(cli.embedder or Settings().embedder, torch_threads)
    client = cli.client()
    key = _admin_key(client)
    url = f"http://{host}:{port}"
    where = _redacted(cli.db or client.kernel.settings.db)
    print(f"memcubed {where} serving at {url}  (docs {url}/docs, MCP {url}/mcp, chat proxy {url}/v1)", flush=True)
    if key is not None:
        print(f"admin API key (shown once, store it now): {key}", flush=True)
    else:
        print("admin API key: issued on an earlier start (another: memcubed principal create-key admin)",
              flush=True)
    if demo is not None:
        threading.Thread(target=_demo_import, args=(client, demo), name="memcubed-demo", daemon=True).start()
    pool = [job_worker(client.kernel).start() for _ in range(max(0, workers))]
    try:
        uvicorn.run(create_app(client.kernel, host=host, threads=threads), host=host, port=port, log_level=log_level,
                    timeout_graceful_shutdown=5)
    finally:
        for worker in pool:
            worker.stop(timeout=5)


@handle_errors
def mcp(ctx: typer.Context,
        principal: Annotated[str | None, typer.Option(envvar="MEMCUBED_PRINCIPAL",
                                                      help="the principal the tools act as")] = None) -> None:
    """Serve the MCP tools over stdio (for desktop agents), acting as one principal."""
    try:
        from memcubed.interfaces.mcp import build_mcp_server
    except ImportError as exc:
        raise DependencyMissing(f"MCP needs the server extra: {_INSTALL}", missing=exc.name) from exc
    cli = state(ctx)
    client = cli.client()
    acting = principal or client.principal
    # Fail now rather than on the first tool call when the principal does not exist.
    client.kernel.get_principal(acting, principal=acting)
    build_mcp_server(client.kernel, lambda _ctx: acting).run("stdio")
