"""The events the kernel records: what happened to which cube, as the event log (outbox) stores them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ACCESS", "Event", "LoggedEvent"]

ACCESS = "access"
"""The kind of the event a successful read records (one per cube read)."""


@dataclass(frozen=True)
class Event:
    """Something that happened to a cube: ``add``, ``update``, ``access``, ``forget``…

    Write events carry the audit record's op as ``kind`` and its details; an access event names the
    cube version read and carries no details.
    """

    kind: str
    principal: str
    at: datetime
    cube_id: str | None = None
    version: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedEvent:
    """An event as the durable log holds it.

    Attributes:
        seq: its position in the log: increasing in commit order, never reused (trimming leaves gaps).
        event: what happened.
    """

    seq: int
    event: Event
