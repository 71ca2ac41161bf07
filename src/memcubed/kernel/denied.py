"""The audit record of a refused call: ``AccessDenied`` raised by a kernel operation is recorded as one
``denied`` record (principal, operation, cube id, the right or key scope it needed)."""

from __future__ import annotations

from datetime import datetime

from memcubed.backends.base import StorageBackend
from memcubed.cube.ids import parse_cube_id
from memcubed.errors import AccessDenied, ValidationError
from memcubed.kernel import audit
from memcubed.kernel.seal import AuditSeal

__all__ = ["DENIED", "record_denied"]

DENIED = "denied"
"""The ``op`` of the audit record a refused call writes."""


def record_denied(store: StorageBackend, principal: object, operation: str, exc: AccessDenied, *,
                  at: datetime, seal: AuditSeal = audit.UNKEYED) -> None:
    """Append the ``denied`` record of ``exc`` in a transaction of its own (the refused one rolled back)."""
    cube_id = exc.details.get("id")
    try:
        cube_id = parse_cube_id(cube_id) if cube_id is not None else None
    except ValidationError:
        cube_id = None
    details = {"operation": operation, **{k: str(v) for k, v in exc.details.items()
                                           if k in ("needed", "scope", "key_id")}}
    with store.transaction():
        audit.append(store, at=at, principal=str(principal)[:128], op=DENIED, cube_id=cube_id, version=None,
                     details=details, seal=seal)
