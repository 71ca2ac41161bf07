"""Choosing a backend from a location: a SQLite file path or a ``postgresql://`` DSN."""

from __future__ import annotations

from pathlib import Path

from memcubed.backends.base import BlobStore, StorageBackend
from memcubed.settings import Settings

__all__ = ["is_postgres_dsn", "open_backend"]

_DSN_PREFIXES = ("postgresql://", "postgres://")


def is_postgres_dsn(location: str | Path) -> bool:
    """Return whether ``location`` names a PostgreSQL database rather than a SQLite file."""
    return str(location).startswith(_DSN_PREFIXES)


def open_backend(location: str | Path, *, settings: Settings | None = None,
                 create: bool = True) -> tuple[StorageBackend, BlobStore]:
    """Open (migrating its schema, and creating it when ``create``) the store at ``location`` and its blob store.

    A SQLite file keeps its blobs in the folder ``<file>.blobs``; a PostgreSQL database keeps them in
    a table, so that every server sharing the database shares them. A new SQLite file is created with
    mode 0600 and its blob folders 0700; a missing folder is never created.

    Raises:
        StoreNotFound: there is no store at ``location`` and ``create`` is False, or a SQLite file's
            folder does not exist.
        DependencyMissing: the backend's driver is not installed.
        BackendUnavailable: the database server cannot be reached.
        ConfigurationError: the store was written by a newer memcubed.
    """
    settings = settings or Settings()
    if is_postgres_dsn(location):
        from memcubed.backends.postgres import PostgresBlobStore, PostgresStore

        pg = PostgresStore(str(location), pool_size=settings.pg_pool_size,
                           connect_timeout_s=settings.pg_connect_timeout_s,
                           exact_vectors_up_to=settings.exact_vectors_up_to, create=create)
        return pg, PostgresBlobStore(pg)
    from memcubed.backends.blobs import FileBlobStore
    from memcubed.backends.sqlite import SqliteStore

    lite = SqliteStore(location, exact_vectors_up_to=settings.exact_vectors_up_to,
                       lexical_index=settings.lexical_index, create=create)
    return lite, FileBlobStore(f"{location}.blobs")
