"""Reading cubes by id: the StorageBackend methods every SQL store shares for it (a base of ``SqlStore``).

A search reads its candidates, and the adjacent turns exchange scoring needs, in as few statements as it can:
one query returns the rows with their grants (aggregated in the query by the dialect's ``_GRANTS``), whether
the searcher's scope selects each, and on request each one's live neighbours in its source.
Statements use ``?`` placeholders and read rows by column name, like ``backends._sql``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from memcubed.backends._common import scope_clause
from memcubed.backends._cube_row import cube_from_row
from memcubed.backends._statements import SqlStatements, marks
from memcubed.backends.base import ScopedCubes, SearchScope
from memcubed.cube.model import MemCube

__all__ = ["SqlCubeReads"]

_NEAR = ("(SELECT x.id FROM cubes x WHERE x.namespace = c.namespace AND x.source_uri = c.source_uri"
         " AND x.seq {} c.seq AND x.state != 'deleted' ORDER BY x.seq {} LIMIT 1)")
_BEFORE, _AFTER = _NEAR.format("<", "DESC"), _NEAR.format(">", "ASC")


class SqlCubeReads(SqlStatements):
    """``load_cube(s)``, ``load_scoped``, ``list_cubes``, ``scoped_ids`` and ``adjacent_ids`` in SQL both
    dialects run."""

    _GRANTS = 'json_group_array(json_array(g.principal, g."right", g.accepted))'
    """The JSON text of a cube's ``acl`` rows ``g`` as ``[principal, right, accepted]`` arrays (``[]`` for none)."""

    def load_cube(self, cube_id: str) -> MemCube | None:
        return self.load_cubes([cube_id]).get(cube_id)

    def load_cubes(self, cube_ids: Sequence[str]) -> dict[str, MemCube]:
        return self._read(cube_ids, None, adjacent=False).cubes

    def load_scoped(self, cube_ids: Sequence[str], scope: SearchScope, *, adjacent: bool = False) -> ScopedCubes:
        return self._read(cube_ids, scope, adjacent=adjacent)

    def _read(self, cube_ids: Sequence[str], scope: SearchScope | None, *, adjacent: bool) -> ScopedCubes:
        if not cube_ids:
            return ScopedCubes({}, set(), {})
        columns = [f"(SELECT {self._GRANTS} FROM acl g WHERE g.cube_seq = c.seq) AS grants_json"]
        params: list[Any] = []
        if scope is not None:
            where, params = scope_clause(scope)
            columns.append(f"CASE WHEN {where} THEN 1 ELSE 0 END AS in_scope")
        if adjacent:
            columns += [f"{_BEFORE} AS before_id", f"{_AFTER} AS after_id"]
        rows = self._all(f"SELECT c.*, {', '.join(columns)} FROM cubes c WHERE c.id IN ({marks(cube_ids)})",
                         [*params, *cube_ids])
        cubes = {r["id"]: cube_from_row(dict(r), _grants(r["grants_json"])) for r in rows}
        selected = {r["id"] for r in rows if scope is not None and r["in_scope"]}
        near = {r["id"]: (r["before_id"], r["after_id"]) for r in rows if adjacent and r["source_uri"] is not None}
        return ScopedCubes(cubes, selected, near)

    def list_cubes(self, scope: SearchScope, *, limit: int, offset: int) -> list[MemCube]:
        where, params = scope_clause(scope)
        rows = self._all(f"SELECT c.id FROM cubes c WHERE {where} ORDER BY c.seq DESC LIMIT ? OFFSET ?",
                         [*params, limit, offset])
        ids = [r["id"] for r in rows]
        cubes = self.load_cubes(ids)
        return [cubes[i] for i in ids if i in cubes]

    def scoped_ids(self, cube_ids: Sequence[str], scope: SearchScope) -> set[str]:
        if not cube_ids:
            return set()
        where, params = scope_clause(scope)
        rows = self._all(f"SELECT c.id FROM cubes c WHERE c.id IN ({marks(cube_ids)}) AND {where}",
                         [*cube_ids, *params])
        return {r["id"] for r in rows}

    def adjacent_ids(self, cube_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        if not cube_ids:
            return {}
        rows = self._all(f"SELECT c.id AS id, {_BEFORE} AS before_id, {_AFTER} AS after_id"
                         f" FROM cubes c WHERE c.id IN ({marks(cube_ids)}) AND c.source_uri IS NOT NULL",
                         list(cube_ids))
        return {r["id"]: (r["before_id"], r["after_id"]) for r in rows}


def _grants(text: str | None) -> list[dict[str, Any]]:
    """A cube's grants from its ``grants_json`` column, by principal then right (the aggregate's order is not
    defined)."""
    grants = [{"principal": p, "right": r, "accepted": bool(a)} for p, r, a in json.loads(text or "[]")]
    return sorted(grants, key=lambda g: (str(g["principal"]), str(g["right"])))
