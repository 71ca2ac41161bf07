"""The MemCube model and its parts: rights order, enum values, frozen and strict fields."""

from __future__ import annotations

from datetime import UTC, datetime

import pydantic
import pytest

from memcubed import BlobRef, CubeKind, CubeState, DerivedRef, Grant, MemCube, Right, Source


def _cube(**changes: object) -> MemCube:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    fields: dict[str, object] = {"id": "01a20e2e-0000-7000-8000-000000000001", "namespace": "default",
                                 "owner": "alice", "created_at": now, "updated_at": now, "version": 1}
    return MemCube.model_validate({**fields, **changes})


def test_rights_are_ordered() -> None:
    assert Right.READ < Right.WRITE < Right.SHARE < Right.ADMIN


@pytest.mark.parametrize(("value", "right"), [("read", Right.READ), (" Write ", Right.WRITE), ("SHARE", Right.SHARE),
                                              (4, Right.ADMIN), (Right.READ, Right.READ)])
def test_right_parse(value: str | int | Right, right: Right) -> None:
    assert Right.parse(value) is right


@pytest.mark.parametrize("value", ["owner", "", 0, 5])
def test_right_parse_rejects_unknown(value: str | int) -> None:
    with pytest.raises((KeyError, ValueError)):
        Right.parse(value)


def test_enum_values_are_the_wire_names() -> None:
    assert [k.value for k in CubeKind] == ["plaintext", "activation", "parameter"]
    assert [s.value for s in CubeState] == ["active", "stale", "archived", "deleted", "inactive"]


def test_defaults() -> None:
    cube = _cube()
    assert (cube.kind, cube.state, cube.importance, cube.acl, cube.tags, cube.forgotten) == (
        CubeKind.PLAINTEXT, CubeState.ACTIVE, 0.5, [], [], False)
    assert cube.source == Source()
    assert cube.stats.access_count == 0


def test_json_roundtrip() -> None:
    cube = _cube(acl=[Grant(principal="bob", right=Right.WRITE)], derived_from=[DerivedRef(id="x", version=2)],
                 payload=BlobRef(sha256="a" * 64, size=10), source=Source(type="document", uri="file:///a"))
    assert MemCube.model_validate_json(cube.model_dump_json()) == cube


@pytest.mark.parametrize("changes", [{"version": 0}, {"importance": 1.01}, {"unknown": 1}, {"state": "gone"}])
def test_invalid_cubes_are_rejected(changes: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        _cube(**changes)


def test_parts_are_frozen() -> None:
    grant = Grant(principal="bob", right=Right.READ)
    with pytest.raises(pydantic.ValidationError):
        grant.right = Right.ADMIN  # type: ignore[misc]


def test_blob_ref_needs_a_sha256() -> None:
    with pytest.raises(pydantic.ValidationError):
        BlobRef(sha256="xyz", size=1)
