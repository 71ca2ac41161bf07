"""``cube_from_row`` builds a stored row's MemCube without pydantic's validation when that cannot fail: it must
give exactly the validating construction's cube (values, field types, fields set) for every row our stores
write, and, for any other row — corrupted, tampered, of other types — the validating construction's outcome,
the same error included."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import memcubed
from memcubed.backends._common import CUBE_COLUMNS, cube_values, format_ts
from memcubed.backends._cube_reads import SqlCubeReads, _grants
from memcubed.backends._cube_row import _trusted, cube_from_row, validated_cube_from_row
from memcubed.cube.model import BlobRef, CubeKind, CubeState, CubeStats, DerivedRef, Grant, MemCube, Right, Source

_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
_TIMES = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=_ZONES)
_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
_ANY_TEXT = st.text(max_size=12)  # NUL and lone surrogates too: MemCube's own str fields take them


def _shape(value: Any) -> Any:
    """What equality does not see: each model's class and fields set, each value's type, all the way down."""
    if isinstance(value, BaseModel):
        return (type(value), frozenset(value.model_fields_set), list(value.__dict__),
                {name: _shape(item) for name, item in value.__dict__.items()},
                value.__pydantic_extra__, value.__pydantic_private__)
    if isinstance(value, list | tuple):
        return (type(value), [_shape(item) for item in value])
    if isinstance(value, dict):
        return (type(value), {key: _shape(item) for key, item in value.items()})
    if isinstance(value, datetime):
        return (type(value), type(value.tzinfo), value.utcoffset())
    return type(value)


def _assert_same(fast: MemCube, slow: MemCube) -> None:
    assert fast == slow
    assert _shape(fast) == _shape(slow)
    assert _json(fast) == _json(slow)
    assert repr(fast) == repr(slow)


def _json(cube: MemCube) -> str:
    try:
        return cube.model_dump_json()
    except ValueError as exc:  # a lone surrogate in a field MemCube takes as it is: JSON cannot hold it
        return f"{type(exc).__name__}: {exc}"


def _outcome(row: dict[str, Any], acl: list[dict[str, Any]], build: Any) -> tuple[str, Any]:
    try:
        cube = build(row, acl)
    except Exception as exc:  # the error itself is what is compared
        return type(exc).__name__, str(exc)
    return "cube", (cube, _shape(cube))


@st.composite
def _cubes(draw: st.DrawFn) -> MemCube:
    """Any cube a store can hold (as the kernel writes them: validated)."""
    kind = draw(st.sampled_from(list(CubeKind)))
    payload = None if kind is CubeKind.PLAINTEXT else draw(st.none() | st.builds(
        BlobRef, sha256=st.text("0123456789abcdef", min_size=64, max_size=64), size=st.integers(0, 2**40),
        media_type=st.sampled_from(["application/safetensors", "x/y"])))
    return MemCube(
        id=draw(_ANY_TEXT), kind=kind, namespace=draw(_ANY_TEXT), owner=draw(_ANY_TEXT),
        source=draw(st.builds(Source, type=_TEXT, uri=st.none() | _TEXT, ref=st.none() | _TEXT,
                              occurred_at=st.none() | _TIMES)),
        derived_from=draw(st.lists(st.builds(DerivedRef, id=_TEXT, version=st.integers(1, 2**53)), max_size=2)),
        created_at=draw(_TIMES), updated_at=draw(_TIMES), version=draw(st.integers(1, 2**53)),
        importance=draw(st.floats(0.0, 1.0)),
        acl=draw(st.lists(st.builds(Grant, principal=_TEXT, right=st.sampled_from(list(Right)),
                                    accepted=st.booleans()), max_size=3, unique_by=lambda g: g.principal)),
        tags=draw(st.lists(_ANY_TEXT, max_size=3)), state=draw(st.sampled_from(list(CubeState))),
        stats=draw(st.builds(CubeStats, access_count=st.integers(0, 2**31), last_access=st.none() | _TIMES,
                             hotness=st.floats(0.0, 1e6))),
        model=draw(st.none() | _ANY_TEXT), text=draw(st.none() | _ANY_TEXT), payload=payload,
        segments=draw(st.lists(_TEXT, max_size=2)), acl_version=draw(st.integers(0, 2**31)),
        meta=draw(st.dictionaries(_ANY_TEXT, st.none() | st.integers() | _ANY_TEXT | st.lists(st.booleans()),
                                  max_size=3)),
        forgotten=draw(st.booleans()), valid_from=draw(st.none() | _TIMES), valid_to=draw(st.none() | _TIMES))


def _row(cube: MemCube) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``cubes`` row and grants a store writes for ``cube`` (as ``load_cubes`` reads them back)."""
    row = dict(zip(CUBE_COLUMNS, cube_values(cube), strict=True))
    row.update(seq=1, access_count=cube.stats.access_count, hotness=cube.stats.hotness,
               last_access=None if cube.stats.last_access is None else format_ts(cube.stats.last_access))
    grants = json.dumps([[g.principal, int(g.right), int(g.accepted)] for g in cube.acl])
    return row, _grants(grants)


@settings(max_examples=150)
@given(_cubes())
def test_a_row_our_store_writes_builds_the_validated_cube_without_validation(cube: MemCube) -> None:
    row, acl = _row(cube)
    _assert_same(_trusted(row, acl), validated_cube_from_row(row, acl))  # the fast path, not a fallback
    _assert_same(cube_from_row(row, acl), validated_cube_from_row(row, acl))


def test_rows_read_back_from_a_real_store_take_the_fast_path(tmp_path: Path, raw_db: Any) -> None:
    db = tmp_path / "s.db"
    with memcubed.open(db, embedder=None) as admin:
        for name in ("alice", "bob"):
            admin.create_principal(name)
        alice = admin.as_principal("alice")
        when = datetime(2023, 5, 8, 13, 56, tzinfo=timezone(timedelta(hours=2)))
        first = alice.add("Caroline: the codeword is bingo", namespace="n", tags=["a", "é"], importance=1.0,
                          meta={"k": [1, "x\x00y"], "ü": None},
                          source={"type": "conversation", "uri": "conv-1", "ref": "D1:3", "occurred_at": when})
        alice.add("a second turn", namespace="n", source={"type": "conversation", "uri": "conv-1"})
        alice.add("plain", namespace="n", importance=0.0)
        alice.share(first.id, "bob", "write")
        alice.search("codeword", namespace="n")
    rows = raw_db(db).execute(f"SELECT c.*, (SELECT {SqlCubeReads._GRANTS} FROM acl g WHERE g.cube_seq = c.seq)"
                              " AS grants_json FROM cubes c").fetchall()
    assert len(rows) == 3
    for raw in rows:
        row = dict(raw)
        acl = _grants(row["grants_json"])
        _assert_same(_trusted(row, acl), validated_cube_from_row(row, acl))
    assert any(_grants(dict(r)["grants_json"]) for r in rows)


_HOSTILE = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.integers(2**53, 2**53 + 1),
                     st.floats(allow_nan=True), st.text(max_size=8), st.sampled_from(
                         ["bogus", "ACTIVE", "Plaintext", "2023-05-08T13:56:00", "2023-05-08T13:56:00Z", "1", "0.5",
                          "\x00", "\ud800", "a" * 300, "f" * 64, "plaintext", "deleted", "activation"]),
                     st.lists(st.integers(0, 5), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                               max_size=2))
_COLUMNS = ["id", "kind", "namespace", "owner", "state", "version", "created_at", "updated_at", "importance", "model",
            "text", "forgotten", "access_count", "hotness", "last_access", "valid_from", "valid_to"]
_DOC = ["source", "derived_from", "tags", "payload", "segments", "acl_version", "meta", "unknown"]
_NESTED = [("source", "type"), ("source", "uri"), ("source", "ref"), ("source", "occurred_at"), ("source", "x"),
           ("payload", "sha256"), ("payload", "size"), ("payload", "media_type"), ("payload", "x")]
_GRANT = ["principal", "right", "accepted", "x"]
_BASE = MemCube(id="c1", kind=CubeKind.ACTIVATION, namespace="n", owner="alice",
                created_at=datetime(2024, 1, 1, tzinfo=UTC), updated_at=datetime(2024, 1, 2, tzinfo=UTC),
                version=3, importance=0.25,
                source=Source(type="conversation", uri="u", ref="r", occurred_at=datetime(2023, 5, 8, tzinfo=UTC)),
                derived_from=[DerivedRef(id="c0", version=2)], acl=[Grant(principal="bob", right=Right.READ)],
                payload=BlobRef(sha256="a" * 64, size=10), segments=["s"], tags=["t"], meta={"m": 1})


@settings(max_examples=400)  # cheap: no store
@given(st.sampled_from(["column", "doc", "nested", "grant", "derived"]), st.data(), _HOSTILE)
@example("column", None, "bogus")  # an unknown kind or state, for any field drawn
@example("grant", None, 9)  # a right that does not exist
@example("nested", None, "2023-05-08T13:56:00")  # a naive event time
@example("nested", None, 1_700_000_000)  # a number where pydantic reads a unix time
def test_a_corrupted_row_gets_the_validating_constructions_outcome(where: str, data: Any, value: Any) -> None:
    row, acl = _row(_BASE)
    doc = json.loads(row["doc"])
    pick = (lambda items: data.draw(st.sampled_from(items))) if data is not None else (lambda items: items[0])
    if where == "column":
        row[pick(_COLUMNS)] = value
    elif where == "doc":
        doc[pick(_DOC)] = value
    elif where == "nested":
        part, key = pick(_NESTED)
        doc[part][key] = value
    elif where == "grant":
        acl[0][pick(_GRANT)] = value
    else:
        doc["derived_from"][0][pick(["id", "version", "x"])] = value
    try:
        row["doc"] = json.dumps(doc)
    except ValueError:  # NaN and the like: JSON of our own cannot hold them
        row["doc"] = json.dumps(doc, allow_nan=True)
    fast, slow = _outcome(row, acl, cube_from_row), _outcome(row, acl, validated_cube_from_row)
    if fast[0] == slow[0] == "cube":
        _assert_same(fast[1][0], slow[1][0])
    else:
        assert fast == slow


@pytest.mark.parametrize(("column", "value"), [("kind", "bogus"), ("state", "gone"), ("version", 0),
                                               ("importance", math.inf), ("owner", 7)])
def test_a_row_corrupted_where_rights_depend_on_it_is_still_refused(column: str, value: Any) -> None:
    row, acl = _row(_BASE)
    row[column] = value
    with pytest.raises(ValueError):  # pydantic's ValidationError, as before the fast path
        cube_from_row(row, acl)
    row, acl = _row(_BASE)
    acl[0]["right"] = 9
    with pytest.raises(ValueError):
        cube_from_row(row, acl)


def test_a_tampered_grant_in_the_store_is_refused_on_read(tmp_path: Path, raw_db: Any) -> None:
    db = tmp_path / "s.db"
    with memcubed.open(db, embedder=None) as admin:
        for name in ("alice", "bob"):
            admin.create_principal(name)
        cube = admin.as_principal("alice").add("shared with bob", namespace="n")
        admin.as_principal("alice").share(cube.id, "bob", "read")
    conn = raw_db(db)
    conn.execute('UPDATE acl SET "right" = 9')
    conn.commit()
    with memcubed.open(db, embedder=None) as admin, pytest.raises(ValueError):
        admin.as_principal("bob").get(cube.id)
