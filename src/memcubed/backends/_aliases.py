"""Entity aliases: the StorageBackend methods every SQL store shares (a base of ``SqlStore``).

A cube's aliases (``backends.alias.learn_aliases`` of its text) are rows of ``cube_alias`` keyed by the cube's
seq, written with its index entries and removed with them, so an edit re-learns them and ``forget`` erases
them. Reads apply the searcher's scope (namespace, rights, filters) in the query, like the other indexes.
Statements use ``?`` placeholders and read rows by column name, like ``backends._sql``.
"""

from __future__ import annotations

from collections.abc import Sequence

from memcubed.backends._common import scope_clause
from memcubed.backends._statements import SqlStatements
from memcubed.backends.alias import learn_aliases
from memcubed.backends.base import SearchScope
from memcubed.cube.model import MemCube

__all__ = ["SqlAliases"]

_MAX_TERMS = 32


class SqlAliases(SqlStatements):
    """The alias methods of the StorageBackend Protocol, in SQL both dialects run."""

    def _index_aliases(self, seq: int, cube: MemCube) -> None:
        """Write the aliases ``cube``'s text establishes (none for a cube without text)."""
        if cube.text:
            self._many("INSERT INTO cube_alias (seq, term, alias) VALUES (?, ?, ?)",
                       [(seq, term, alias) for term, alias in learn_aliases(cube.text)])

    def _unindex_aliases(self, seq: int) -> None:
        self._run("DELETE FROM cube_alias WHERE seq = ?", (seq,))

    def alias_terms(self, terms: Sequence[str], scope: SearchScope, limit: int) -> list[tuple[str, str, str]]:
        wanted = list(dict.fromkeys(t.lower() for t in terms))[:_MAX_TERMS]
        if not wanted or limit < 1:
            return []
        where, params = scope_clause(scope)
        rows = self._all(
            "SELECT a.term, a.alias, c.id FROM cube_alias a JOIN cubes c ON c.seq = a.seq"
            f" WHERE a.term IN ({', '.join('?' * len(wanted))}) AND {where} ORDER BY a.term, a.alias, c.seq LIMIT ?",
            [*wanted, *params, limit])
        return [(str(r["term"]), str(r["alias"]), str(r["id"])) for r in rows]
