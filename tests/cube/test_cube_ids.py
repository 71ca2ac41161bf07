"""Cube ids: UUIDv7, strictly increasing within a process, parsed to one canonical form."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memcubed import ValidationError
from memcubed.cube.ids import new_cube_id, parse_cube_id


def test_ids_are_uuid7_and_strictly_increasing() -> None:
    ids = [new_cube_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    for value in ids[:10]:
        parsed = uuid.UUID(value)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_id_carries_its_creation_time() -> None:
    before = datetime.now(UTC).timestamp() * 1000
    value = uuid.UUID(new_cube_id())
    after = datetime.now(UTC).timestamp() * 1000
    ms = value.int >> 80
    assert before - 1 <= ms <= after + 2


@given(value=st.uuids())
def test_any_uuid_parses_to_lowercase(value: uuid.UUID) -> None:
    assert parse_cube_id(str(value).upper()) == str(value)
    assert parse_cube_id(f"  {value}\n") == str(value)


# Fixed values: parallel workers (pytest-xdist) must collect the same test ids.
_SOME = uuid.UUID("0192f3a4-5b6c-4d7e-8f90-a1b2c3d4e5f6")


@pytest.mark.parametrize("value", ["", "not-a-uuid", "0" * 36, "{" + str(_SOME) + "}", _SOME.hex,
                                   None, 7, b"0" * 36])
def test_malformed_ids(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        parse_cube_id(value)
    assert info.value.details["field"] == "id"
