"""Cube identifiers: UUIDv7, sortable by creation time."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

from memcubed.errors import ValidationError

__all__ = ["new_cube_id", "parse_cube_id"]

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
