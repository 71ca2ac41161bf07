"""The scale-out backend: PostgreSQL with pgvector, shared by several memcubed processes."""

from memcubed.backends.postgres.blobs import PostgresBlobStore
from memcubed.backends.postgres.store import PostgresStore

__all__ = ["PostgresBlobStore", "PostgresStore"]
