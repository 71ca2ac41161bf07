"""Cube identifiers: UUIDv7, sortable by creation time."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

from memcubed.errors import ValidationError

__all__ = ["new_cube_id", "owned_cube_id", "parse_cube_id"]

_OWNED = uuid.UUID("6d656d63-7562-6564-0000-6f776e656469")
"""The uuid5 namespace of client-chosen ids (see ``owned_cube_id``)."""
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_lock = threading.Lock()
_last = [0, 0]  # last (millisecond, counter) handed out, so ids stay strictly increasing


def new_cube_id() -> str:
    """Return a new UUIDv7 string; ids made in one process are strictly increasing."""
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last[0]:
            ms, counter = _last[0], _last[1] + 1
            if counter >= 1 << 12:  # counter exhausted in this millisecond: borrow the next one
                ms, counter = ms + 1, 0
        else:
            counter = 0
        _last[0], _last[1] = ms, counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    return str(uuid.UUID(int=value))


def parse_cube_id(value: object) -> str:
    """Return ``value`` as a canonical cube id.

    Raises:
        ValidationError: ``value`` is not a UUID string.
    """
    if not isinstance(value, str) or not _UUID_RE.match(value.strip().lower()):
        raise ValidationError(f"malformed cube id: {value!r}", field="id", value=str(value)[:100])
    return value.strip().lower()


def owned_cube_id(owner: str, client_id: str) -> str:
    """The stored id of a cube whose owner chose ``client_id``: a uuid5 of (owner, client id).

    Client-chosen ids (importers derive them from their input, so they are predictable) are scoped to
    their owner: the same owner adding the same id again is refused as a duplicate (imports stay
    idempotent), while another principal can neither squat nor probe it.

    Raises:
        ValidationError: ``client_id`` is not a UUID string.
    """
    return str(uuid.uuid5(_OWNED, f"{owner}\n{parse_cube_id(client_id)}"))
