"""The embedded SQLite backend."""

from memcubed.backends.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
