"""The backends the conformance suite runs on: where a fresh store lives, and raw access to it.

A test asks ``backend.location()`` for a fresh, empty store: a new SQLite file, or a new PostgreSQL
database cloned from a migrated template (about 25 ms). Raw connections bypass memcubed so that tests
can count rows or tamper with the audit log; their SQL uses ``?`` placeholders on both backends.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from memcubed.backends.base import BlobStore, StorageBackend
from memcubed.backends.postgres.driver import qmark
from memcubed.backends.sqlite.driver import connect, sqlite_module

__all__ = ["BACKENDS", "Backend", "PgCluster", "PostgresBackend", "RawDb", "SqliteBackend"]

BACKENDS = ["sqlite", "postgres"]
COUNTED = ("cubes", "cube_versions", "audit", "principals", "acl", "cube_tags")


class RawDb:
    """One raw connection to a store, outside memcubed."""

    def __init__(self, conn: Any, *, postgres: bool) -> None:
        self._conn = conn
        self.postgres = postgres
        self.error: type[Exception] = _pg_error() if postgres else sqlite_module().DatabaseError

    def execute(self, sql: str, params: Any = ()) -> Any:
        """Run ``sql`` (``?`` placeholders) and return the cursor (rows are tuples)."""
        return self._conn.execute(qmark(sql) if self.postgres else sql, params)

    def unlock_audit(self) -> None:
        """Drop the append-only triggers (and, on PostgreSQL, the integer type of ``version``, which SQLite
        never enforces) so a test can tamper with the log like an attacker with database access could."""
        if self.postgres:
            for trigger in ("audit_no_update", "audit_no_delete"):
                self.execute(f"DROP TRIGGER {trigger} ON audit")
            self.execute("ALTER TABLE audit ALTER COLUMN version TYPE text")
        else:
            self.execute("DROP TRIGGER audit_no_update")
            self.execute("DROP TRIGGER audit_no_delete")

    def refuse_inserts(self, table: str) -> None:
        """Make every insert into ``table`` fail (a trigger raising, as a full disk or a broken constraint
        would), until :meth:`allow_inserts`."""
        if self.postgres:
            self.execute("CREATE OR REPLACE FUNCTION memcubed_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                         "$$ BEGIN RAISE EXCEPTION 'insert refused by the test'; END $$")
            self.execute(f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW "
                         "EXECUTE FUNCTION memcubed_test_refuse()")
        else:
            self.execute(f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                         "BEGIN SELECT RAISE(ABORT, 'insert refused by the test'); END")

    def allow_inserts(self, table: str) -> None:
        """Drop the trigger :meth:`refuse_inserts` made."""
        self.execute(f"DROP TRIGGER refuse_{table} ON {table}" if self.postgres else f"DROP TRIGGER refuse_{table}")

    def counts(self) -> dict[str, int]:
        """Row counts of the tables every operation writes."""
        return {table: int(self.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) for table in COUNTED}

    def hold_write_lock(self) -> None:
        """Take the store's write lock and keep it until :meth:`release`, as a writer in another process
        would: ``BEGIN IMMEDIATE`` on SQLite, the backend's advisory write lock on PostgreSQL."""
        if self.postgres:
            from memcubed.backends.postgres.schema import WRITE_LOCK

            self.execute("BEGIN")
            self.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
        else:
            self.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        """End the transaction :meth:`hold_write_lock` opened."""
        self.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()


class Backend:
    """Fresh stores of one kind; ``cleanup`` removes them."""

    name: str

    def location(self) -> str:
        """Return where a new, empty store lives (a file path or a DSN)."""
        raise NotImplementedError

    def raw(self, location: str) -> RawDb:
        """Open a raw connection to the store at ``location``; the caller closes it."""
        raise NotImplementedError

    def impatient(self, location: str) -> tuple[StorageBackend, BlobStore]:
        """Open the store at ``location`` so that waiting for its write lock fails after about a second
        (``BackendUnavailable``) instead of waiting for minutes; the caller closes it."""
        raise NotImplementedError

    def cleanup(self) -> None:
        """Remove every store this object handed out (their clients must be closed)."""


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def location(self) -> str:
        return str(self.folder / f"{uuid.uuid4().hex}.db")

    def raw(self, location: str) -> RawDb:
        # memcubed's own SQLite module: a second SQLite library in one process ignores the first one's locks.
        return RawDb(connect(location, vectors=False), postgres=False)

    def impatient(self, location: str) -> tuple[StorageBackend, BlobStore]:
        from memcubed.backends.blobs import FileBlobStore
        from memcubed.backends.sqlite import SqliteStore

        return SqliteStore(location, busy_timeout_ms=1000), FileBlobStore(f"{location}.blobs")


class PgCluster:
    """The session's PostgreSQL server and a template database at the current schema."""

    def __init__(self, admin_dsn: str) -> None:
        import psycopg

        from memcubed.backends.postgres import PostgresStore
        from memcubed.backends.postgres.embedded import with_database

        self.admin_dsn = admin_dsn
        self._admin = psycopg.connect(admin_dsn, autocommit=True)
        self.template = f"memcubed_tpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self._admin.execute(f'CREATE DATABASE "{self.template}"')
        PostgresStore(with_database(admin_dsn, self.template), pool_size=1).close()

    def create(self) -> str:
        """Create a database cloned from the template; return its URI."""
        from memcubed.backends.postgres.embedded import with_database

        name = f"memcubed_t_{uuid.uuid4().hex[:16]}"
        self._admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return with_database(self.admin_dsn, name)

    def drop(self, dsn: str) -> None:
        """Drop a database created by :meth:`create`, closing any session still on it."""
        name = urlsplit(dsn).path.lstrip("/")
        self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self._admin.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        self._admin.close()


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, cluster: PgCluster) -> None:
        self.cluster = cluster
        self._created: list[str] = []

    def location(self) -> str:
        dsn = self.cluster.create()
        self._created.append(dsn)
        return dsn

    def raw(self, location: str) -> RawDb:
        import psycopg

        return RawDb(psycopg.connect(location, autocommit=True), postgres=True)

    def impatient(self, location: str) -> tuple[StorageBackend, BlobStore]:
        from memcubed.backends.postgres import PostgresBlobStore, PostgresStore

        joiner = "&" if urlsplit(location).query else "?"
        store = PostgresStore(f"{location}{joiner}options={quote('-c lock_timeout=1000')}", pool_size=4)
        return store, PostgresBlobStore(store)

    def cleanup(self) -> None:
        for dsn in self._created:
            self.cluster.drop(dsn)
        self._created.clear()


def _pg_error() -> type[Exception]:
    import psycopg

    return psycopg.Error
