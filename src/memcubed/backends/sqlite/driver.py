"""Opening SQLite connections that can load sqlite-vec, with a clear error when they cannot."""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Any

from memcubed.errors import DependencyMissing

__all__ = ["connect", "sqlite_module"]

_INSTALL_HINT = (
    "this Python's sqlite3 module cannot load extensions, which the vector index (sqlite-vec) needs: "
    "`pip install pysqlite3-binary` (Linux x86_64) or use a Python built with loadable SQLite extensions"
)


@functools.cache  # asked on every statement (``translate_errors``): an import lookup each time cost ~10 µs
def sqlite_module() -> ModuleType:
    """Return a DB-API SQLite module that can load extensions (the bundled pysqlite3 first)."""
    for name in ("pysqlite3.dbapi2", "sqlite3"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module.Connection, "enable_load_extension"):
            return module
    return importlib.import_module("sqlite3")


def connect(path: str, *, vectors: bool, busy_timeout_ms: int = 30_000) -> Any:
    """Open ``path`` in WAL mode with a busy timeout; load sqlite-vec when ``vectors`` is set.

    Raises:
        DependencyMissing: vectors are wanted but no extension-capable SQLite or sqlite-vec is installed.
    """
    module = sqlite_module()
    conn = module.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000)
    conn.row_factory = module.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # Deleted and overwritten cells and freed pages are zeroed, so erased text leaves no bytes behind.
    conn.execute("PRAGMA secure_delete = ON")
    if vectors:
        load_vector_extension(conn)
    return conn


def load_vector_extension(conn: Any) -> None:
    """Load sqlite-vec into ``conn``.

    Raises:
        DependencyMissing: the connection cannot load extensions, or sqlite-vec is not installed.
    """
    if not hasattr(conn, "enable_load_extension"):
        raise DependencyMissing(_INSTALL_HINT)
    try:
        import sqlite_vec
    except ImportError as exc:
        raise DependencyMissing("sqlite-vec is not installed: `pip install sqlite-vec`") from exc
    conn.enable_load_extension(True)
    try:
        sqlite_vec.load(conn)
    finally:
        conn.enable_load_extension(False)
