"""Building blocks of the operation schemas: names, tags, cube ids, the strict input base."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import ConfigDict, StringConstraints

from memcubed.cube.strict import Checked

__all__ = [
    "NOT_BLANK",
    "STORABLE_TEXT",
    "CubeId",
    "Input",
    "Name",
    "Tag",
    "is_blank",
]

Name = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")]
"""A principal or namespace name: letters, digits and ``_.:@-``, at most 128 characters."""

_WS = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
"""Every character some regex dialect or trimmer calls whitespace (Python, JSON Schema/ECMA, pydantic's Rust),
spelled out so that the published schema and the validators agree exactly."""

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                       pattern=rf"^[^\x00-\x1f{_WS}](?:[^\x00-\x1f]*[^\x00-\x1f{_WS}])?$")]
"""A free label, 1 to 64 printable characters, no leading or trailing space."""

CubeId = Annotated[str, StringConstraints(
    pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
"""A cube id: a UUID (memcubed makes UUIDv7s, sortable by creation)."""

NOT_BLANK = rf"[^{_WS}]"
"""Somewhere a character that is not whitespace: the published schema rejects what the validators reject."""


STORABLE_TEXT = rf"^[^\x00]*[^{_WS}\x00][^\x00]*$"
"""Not blank and no NUL character (PostgreSQL text cannot hold one; every backend takes the same input)."""


def is_blank(value: str) -> bool:
    """Whether ``value`` holds no character but whitespace (as the published schema defines it)."""
    return re.search(NOT_BLANK, value) is None


class Input(Checked):
    """Base of every operation input: unknown fields are refused, and every field is ``Checked`` (no NUL or
    lone surrogate in any string, no boolean or string for a number, no naive datetime)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)
