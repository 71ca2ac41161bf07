"""psycopg 3 plumbing: the optional import, placeholder rewriting and error translation."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from memcubed.errors import AlreadyExists, BackendUnavailable, DependencyMissing, StorageError, ValidationError

__all__ = ["psycopg_module", "qmark", "translate_errors"]

_INSTALL_HINT = "the PostgreSQL backend needs psycopg, psycopg_pool and pgvector: `pip install 'memcubed[postgres]'`"


def psycopg_module() -> ModuleType:
    """Return ``psycopg`` after checking the whole client side of the backend is installed.

    Raises:
        DependencyMissing: psycopg, psycopg_pool or pgvector is not installed.
    """
    try:
        import pgvector.psycopg  # noqa: F401
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise DependencyMissing(_INSTALL_HINT) from exc
    return psycopg


@functools.lru_cache(maxsize=1024)
def qmark(sql: str) -> str:
    """Rewrite a ``?``-placeholder statement (the shared SQL) into psycopg's ``%s`` style."""
    return sql.replace("%", "%%").replace("?", "%s")


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn psycopg errors into memcubed errors, most specific first, chained with ``from``.

    Raises:
        ValidationError: a value cannot be stored (lone surrogate, NUL character, out of range).
        AlreadyExists: a unique constraint refused a row.
        BackendUnavailable: the server cannot be reached, the pool is exhausted, or a deadlock or
            serialization failure aborted the transaction (retrying may succeed).
        StorageError: any other database error.
    """
    import psycopg

    try:
        yield
    except UnicodeEncodeError as exc:
        raise ValidationError(f"a value is not valid Unicode: {exc.reason}") from exc
    except psycopg.errors.UniqueViolation as exc:
        raise AlreadyExists(f"postgresql: {_first_line(exc)}") from exc
    except psycopg.DataError as exc:
        raise ValidationError(f"postgresql cannot store a value: {_first_line(exc)}") from exc
    except psycopg.OperationalError as exc:  # connection loss, pool timeout, deadlock, serialization failure
        raise BackendUnavailable(f"postgresql: {_first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise StorageError(f"postgresql: {_first_line(exc)}") from exc


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
