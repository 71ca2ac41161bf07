"""Scheduler decisions: the StorageBackend methods every SQL store shares (a base of ``SqlStore``).

Statements use ``?`` placeholders and read rows by column name, like ``backends._sql``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from memcubed.backends._common import canonical_json, format_ts, parse_ts
from memcubed.backends._statements import SqlStatements
from memcubed.schemas.scheduler import DecisionRecord

__all__ = ["SqlDecisions"]

_COLUMNS = ("id", "at", "clock", "policy", "action", "namespace", "principal", "targets", "score", "inputs",
            "cost", "budget", "outcome", "reason", "job_id", "result")


class SqlDecisions(SqlStatements):
    """The scheduler-decision methods of the StorageBackend Protocol, in SQL both dialects run."""

    def insert_decision(self, decision: DecisionRecord, owners: Sequence[str]) -> int:
        d = decision
        values = (d.id, format_ts(d.at), d.clock, d.policy, d.action, d.namespace, d.principal,
                  canonical_json(d.targets), d.score, canonical_json(d.inputs), canonical_json(d.cost),
                  canonical_json(d.budget), d.outcome, d.reason, d.job_id, canonical_json(d.result))
        rows = self._all(f"INSERT INTO scheduler_decisions ({', '.join(_COLUMNS)}) VALUES"
                         f" ({', '.join('?' * len(_COLUMNS))}) RETURNING seq", values)
        seq = int(rows[0]["seq"])
        for owner in sorted(set(owners)):
            self._run("INSERT INTO scheduler_decision_owners (decision_seq, owner) VALUES (?, ?)", (seq, owner))
        return seq

    def list_decisions(self, *, visible_to: str | None = None, after_seq: int = 0, limit: int = 100,
                       action: str | None = None, since_clock: float | None = None) -> list[DecisionRecord]:
        where, params = ["d.seq > ?"], list[Any]([after_seq])
        if visible_to is not None:
            # Decisions acting for them, or about their own cubes only (no one else's ids show).
            where.append("(d.principal = ? OR (EXISTS (SELECT 1 FROM scheduler_decision_owners o"
                         " WHERE o.decision_seq = d.seq AND o.owner = ?) AND NOT EXISTS (SELECT 1 FROM"
                         " scheduler_decision_owners o WHERE o.decision_seq = d.seq AND o.owner <> ?)))")
            params += [visible_to, visible_to, visible_to]
        if action is not None:
            where.append("d.action = ?")
            params.append(action)
        if since_clock is not None:
            where.append("d.clock >= ?")
            params.append(since_clock)
        rows = self._all(f"SELECT * FROM scheduler_decisions d WHERE {' AND '.join(where)} ORDER BY d.seq LIMIT ?",
                         [*params, limit])
        return [_decision(r) for r in rows]

    def derived_cube_ids(self) -> list[str]:
        rows = self._all("SELECT id FROM cubes WHERE kind IN ('activation', 'parameter')"
                         " AND state IN ('active', 'stale') ORDER BY id")
        return [str(r["id"]) for r in rows]


def _decision(row: Any) -> DecisionRecord:
    return DecisionRecord(
        seq=int(row["seq"]), id=row["id"], at=parse_ts(row["at"]), clock=float(row["clock"]), policy=row["policy"],
        action=row["action"], namespace=row["namespace"], principal=row["principal"],
        targets=json.loads(row["targets"]), score=float(row["score"]), inputs=json.loads(row["inputs"]),
        cost=json.loads(row["cost"]), budget=json.loads(row["budget"]), outcome=row["outcome"],
        reason=row["reason"], job_id=row["job_id"], result=json.loads(row["result"]))
