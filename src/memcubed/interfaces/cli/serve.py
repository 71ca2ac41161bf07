"""``memcubed serve`` (REST + MCP over HTTP + chat proxy) and ``memcubed mcp`` (MCP over stdio)."""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

import typer

from memcubed.composition import job_worker, scheduler_loop
from memcubed.errors import ConfigurationError, DependencyMissing, MemcubedError
from memcubed.interfaces.api import Memcubed
from memcubed.interfaces.cli.state import handle_errors, state
from memcubed.kernel import ADMIN
from memcubed.settings import Settings

__all__ = ["mcp", "serve"]

_INSTALL = "pip install 'memcubed[server]'"


def _admin_key(client: Memcubed) -> str | None:
    """Issue the administrator's first API key on the first start of a store (the administrator never had
    one, live or revoked) and return it; None afterwards, so a revoked key is never replaced on a restart
    (`memcubed principal reset-admin` replaces it, on purpose and audited)."""
    admin = client.as_principal(ADMIN)
    if admin.api_keys(ADMIN):
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
    client = cli.client(create=True)
    key = _admin_key(client)
    url = f"http://{host}:{port}"
    where = _redacted(cli.db or client.kernel.settings.db)
    print(f"memcubed {where} serving at {url}  (docs {url}/docs, MCP {url}/mcp, chat proxy {url}/v1)", flush=True)
    if key is not None:
        print(f"admin API key (shown once, store it now): {key}", flush=True)
    else:
        print("admin API key: issued on the first start, never again on a restart (a new one, revoking the"
              " old: memcubed principal reset-admin)", flush=True)
    if demo is not None:
        threading.Thread(target=_demo_import, args=(client, demo), name="memcubed-demo", daemon=True).start()
    pool = [job_worker(client.kernel, gc=i == 0).start() for i in range(max(0, workers))]  # one collects blobs
    ticker = scheduler_loop(client.kernel)
    if ticker is not None:
        ticker.start()
    try:
        uvicorn.run(create_app(client.kernel, host=host, threads=threads), host=host, port=port, log_level=log_level,
                    timeout_graceful_shutdown=5)
    finally:
        if ticker is not None:
            ticker.stop(timeout=5)
        for worker in pool:
            worker.stop(timeout=5)


@handle_errors
def mcp(ctx: typer.Context,
        principal: Annotated[str | None, typer.Option(envvar="MEMCUBED_PRINCIPAL",
                                                      help="the principal the tools act as")] = None,
        key: Annotated[str | None, typer.Option(envvar="MEMCUBED_API_KEY",
                                                help="act as the owner of this API key instead")] = None) -> None:
    """Serve the MCP tools over stdio (for desktop agents), acting as one principal, named by --principal
    or by an API key (--key); there is no default, so an agent never gets administrator rights by omission."""
    try:
        from memcubed.interfaces.mcp import build_mcp_server
    except ImportError as exc:
        raise DependencyMissing(f"MCP needs the server extra: {_INSTALL}", missing=exc.name) from exc
    cli = state(ctx)
    named = principal or cli.principal
    if named is None and key is None:
        raise ConfigurationError("memcubed mcp needs --principal NAME or --key mck_… (it has no default principal)",
                                 field="principal")
    client = cli.client()
    acting = client.kernel.authenticate(key).name if key is not None else str(named)
    if key is not None and named is not None and named != acting:
        raise ConfigurationError("--principal and the principal of --key differ", field="principal")
    # Fail now rather than on the first tool call when the principal does not exist.
    client.kernel.get_principal(acting, principal=acting)
    kernel = client.kernel

    def principal_of(_ctx: object, operation: str) -> str:
        # With --key, every call re-checks the key: its scope, expiry and revocation act within a session.
        return kernel.authenticate(key, operation=operation).name if key is not None else acting

    build_mcp_server(kernel, principal_of).run("stdio")
