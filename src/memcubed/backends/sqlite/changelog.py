"""The change logs (``vec_log``, ``fts_log``) the in-process indexes replay: reading their span cheaply."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["log_span"]

_LOGS = ("vec_log", "fts_log")


def log_span(query: Callable[[str, Sequence[Any]], list[Any]], log: str) -> tuple[int, int]:
    """The highest and lowest entry id of ``log`` (0, 0 when empty), read from its primary key.

    Two scalar subqueries, not ``max(id), min(id)`` in one SELECT: SQLite answers a lone min() or max() from
    the primary key, but both in one query scan the whole log (22 ms a search at 100k entries under load,
    measured; 0.005 ms this way).
    """
    if log not in _LOGS:
        raise ValueError(f"not a change log: {log!r}")
    row = query(f"SELECT coalesce((SELECT max(id) FROM {log}), 0), coalesce((SELECT min(id) FROM {log}), 0)", ())[0]
    return int(row[0]), int(row[1])
