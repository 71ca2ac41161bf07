"""How the SQL shared by both dialects runs a statement: the one base of ``SqlStore`` and of its mixins.

A dialect's store (``sqlite.store``, ``postgres.store``) provides ``_all``, ``_run`` and ``_many``; the shared
code (``backends._sql``, ``_aliases``, ``_decisions``, ``_jobs``, ``_staging``) calls them with ``?``
placeholders and reads rows by column name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["SqlStatements", "marks"]


def marks(values: Sequence[Any]) -> str:
    """The ``?`` placeholders of an ``IN (...)`` list of ``values``."""
    return ", ".join("?" * len(values))


class SqlStatements:
    """The statement helpers a dialect provides, and ``_one`` on top of them."""

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a statement and return every row it yields (mappings by column name; none when it yields none)."""
        raise NotImplementedError

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement that yields no rows."""
        raise NotImplementedError

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run a statement once per parameter row."""
        raise NotImplementedError

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row a statement yields, or None."""
        rows = self._all(sql, params)
        return rows[0] if rows else None
