"""Bad input gets a typed error with a stable code and leaves the store exactly as it was."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import memcubed
from memcubed import AlreadyExists, BudgetExceeded, MemcubedError, Settings, UnknownPrincipal, ValidationError

Counts = Callable[[str], dict[str, int]]


@pytest.fixture
def store(mc: memcubed.Memcubed) -> tuple[memcubed.Memcubed, str]:
    cube = mc.add("the one good memory", tags=["kept"])
    mc.share(cube.id, "alice")
    return mc, cube.id


def _snapshot(mc: memcubed.Memcubed, cube_id: str, path: str, counts: Counts) -> dict[str, Any]:
    """Everything a failed call could have changed; read through the kernel (without touching stats)."""
    kernel = mc.kernel
    return {
        "rows": counts(path),
        "cube": kernel.store.load_cube(cube_id),
        "history": mc.history(cube_id),
        "audit": mc.audit(),
        "principals": mc.principals(),
    }


BAD_CALLS: list[tuple[str, Callable[[memcubed.Memcubed, str], object], type[MemcubedError], str]] = [
    ("empty text", lambda mc, cid: mc.add(""), ValidationError, "validation_error"),
    ("whitespace text", lambda mc, cid: mc.add(" \n\t "), ValidationError, "validation_error"),
    ("oversized text", lambda mc, cid: mc.add("x" * 101), ValidationError, "validation_error"),
    ("oversized in batch", lambda mc, cid: mc.add_many([{"text": "ok"}, {"text": "y" * 101}]),
     ValidationError, "validation_error"),
    ("blank in batch", lambda mc, cid: mc.add_many([{"text": "ok"}, {"text": "  "}]),
     ValidationError, "validation_error"),
    ("batch repeats an id", lambda mc, cid: mc.add_many([{"text": "a", "id": "01a20e2e-0000-7000-8000-000000000001"},
                                                         {"text": "b", "id": "01a20e2e-0000-7000-8000-000000000001"}]),
     AlreadyExists, "already_exists"),
    ("batch item not a mapping", lambda mc, cid: mc.add_many([{"text": "a"}, "b"]),  # type: ignore[list-item]
     ValidationError, "validation_error"),
    ("NUL in text", lambda mc, cid: mc.add("before\x00after"), ValidationError, "validation_error"),
    ("NUL in update", lambda mc, cid: mc.update(cid, text="\x00"), ValidationError, "validation_error"),
    ("lone surrogate text", lambda mc, cid: mc.add("bad \ud800 text"), ValidationError, "validation_error"),
    ("lone surrogate update", lambda mc, cid: mc.update(cid, text="x\udfff"), ValidationError, "validation_error"),
    ("lone surrogate meta", lambda mc, cid: mc.add("fine text", meta={"k": "\ud800"}),
     ValidationError, "validation_error"),
    ("lone surrogate meta update", lambda mc, cid: mc.update(cid, meta={"k": ["\ud800"]}),
     ValidationError, "validation_error"),
    ("vectors of wrong shape", lambda mc, cid: mc.kernel.add_many([{"text": "a"}], principal="admin",
                                                                  vectors=[[0.1, 0.2]]),  # type: ignore[arg-type]
     ValidationError, "validation_error"),
    ("vectors not finite", lambda mc, cid: mc.kernel.add_many([{"text": "a"}], principal="admin",
                                                              vectors=[[float("nan")] * 384]),  # type: ignore[arg-type]
     ValidationError, "validation_error"),
    ("importance above 1", lambda mc, cid: mc.add("fine text", importance=1.5), ValidationError, "validation_error"),
    ("importance below 0", lambda mc, cid: mc.add("fine text", importance=-0.1), ValidationError, "validation_error"),
    ("importance NaN", lambda mc, cid: mc.add("fine text", importance=float("nan")),
     ValidationError, "validation_error"),
    ("unknown add field", lambda mc, cid: mc.add("fine text", colour="red"), ValidationError, "validation_error"),
    ("bad namespace", lambda mc, cid: mc.add("fine text", namespace="has space"),
     ValidationError, "validation_error"),
    ("malformed add id", lambda mc, cid: mc.add("fine text", id="not-a-uuid"), ValidationError, "validation_error"),
    ("update importance", lambda mc, cid: mc.update(cid, importance=2), ValidationError, "validation_error"),
    ("update empty text", lambda mc, cid: mc.update(cid, text=""), ValidationError, "validation_error"),
    ("update oversized", lambda mc, cid: mc.update(cid, text="z" * 101), ValidationError, "validation_error"),
    ("update nothing", lambda mc, cid: mc.update(cid), ValidationError, "validation_error"),
    ("update to deleted", lambda mc, cid: mc.update(cid, state="deleted"), ValidationError, "validation_error"),
    ("update version 0", lambda mc, cid: mc.update(cid, text="new", expected_version=0),
     ValidationError, "validation_error"),
    ("malformed get id", lambda mc, cid: mc.get("1234"), ValidationError, "validation_error"),
    ("non-string id", lambda mc, cid: mc.get(42), ValidationError, "validation_error"),  # type: ignore[arg-type]
    ("malformed update id", lambda mc, cid: mc.update("zzz", text="x"), ValidationError, "validation_error"),
    ("malformed delete id", lambda mc, cid: mc.delete("../etc"), ValidationError, "validation_error"),
    ("malformed forget id", lambda mc, cid: mc.forget(""), ValidationError, "validation_error"),
    ("malformed share id", lambda mc, cid: mc.share("x", "bob"), ValidationError, "validation_error"),
    ("malformed history id", lambda mc, cid: mc.history("x"), ValidationError, "validation_error"),
    ("version 0", lambda mc, cid: mc.get_version(cid, 0), ValidationError, "validation_error"),
    ("history limit", lambda mc, cid: mc.history(cid, limit=0), ValidationError, "validation_error"),
    ("naive as_of", lambda mc, cid: mc.get(cid, as_of=datetime(2030, 1, 1)), ValidationError, "validation_error"),
    ("unknown right", lambda mc, cid: mc.share(cid, "bob", "superuser"), ValidationError, "validation_error"),
    ("right out of range", lambda mc, cid: mc.share(cid, "bob", 9),  # type: ignore[arg-type]
     ValidationError, "validation_error"),
    ("unknown filter key", lambda mc, cid: mc.search("memory", filters={"colour": "red"}),
     ValidationError, "validation_error"),
    ("unknown state in filter", lambda mc, cid: mc.search("memory", filters={"states": ["gone"]}),
     ValidationError, "validation_error"),
    ("unknown search mode", lambda mc, cid: mc.search("memory", mode="psychic"), ValidationError, "validation_error"),
    ("blank query", lambda mc, cid: mc.search("   "), ValidationError, "validation_error"),
    ("k out of range", lambda mc, cid: mc.search("memory", k=0), ValidationError, "validation_error"),
    ("principal bad kind", lambda mc, cid: mc.create_principal("dave", kind="robot"),
     ValidationError, "validation_error"),
    ("principal bad name", lambda mc, cid: mc.create_principal("bad name!"), ValidationError, "validation_error"),
    ("unknown actor add", lambda mc, cid: mc.as_principal("ghost").add("boo"), UnknownPrincipal, "unknown_principal"),
    ("unknown actor get", lambda mc, cid: mc.as_principal("ghost").get(cid), UnknownPrincipal, "unknown_principal"),
    ("unknown actor search", lambda mc, cid: mc.as_principal("ghost").search("memory"),
     UnknownPrincipal, "unknown_principal"),
    ("empty actor", lambda mc, cid: mc.as_principal("").add("boo"), ValidationError, "validation_error"),
    # One check for every string of every input schema: what PostgreSQL refuses, SQLite refuses too.
    ("NUL in source.uri", lambda mc, cid: mc.add("fine text", source={"uri": "doc\x00.pdf"}),
     ValidationError, "validation_error"),
    ("NUL in source.type", lambda mc, cid: mc.add("fine text", source={"type": "api\x00"}),
     ValidationError, "validation_error"),
    ("NUL in source.ref", lambda mc, cid: mc.update(cid, source={"ref": "p\x001"}),
     ValidationError, "validation_error"),
    ("surrogate in source.uri", lambda mc, cid: mc.add("fine text", source={"uri": "doc\udc80"}),
     ValidationError, "validation_error"),
    ("surrogate deep in meta", lambda mc, cid: mc.add("fine text", meta={"k": ["ok", {"deep": "a\udc80"}]}),
     ValidationError, "validation_error"),
    ("surrogate in meta key", lambda mc, cid: mc.update(cid, meta={"k\ud800": 1}), ValidationError, "validation_error"),
    ("NUL in query", lambda mc, cid: mc.search("memory\x00"), ValidationError, "validation_error"),
    ("NUL in filter tag", lambda mc, cid: mc.search("memory", filters={"tags": ["a\x00"]}),
     ValidationError, "validation_error"),
    # Numbers are numbers: no boolean, no numeric string.
    ("boolean importance", lambda mc, cid: mc.add("fine text", importance=True), ValidationError, "validation_error"),
    ("string importance", lambda mc, cid: mc.add("fine text", importance="0.5"), ValidationError, "validation_error"),
    ("string importance update", lambda mc, cid: mc.update(cid, importance="1"), ValidationError, "validation_error"),
    ("boolean expected_version", lambda mc, cid: mc.update(cid, text="new", expected_version=True),
     ValidationError, "validation_error"),
    ("string k", lambda mc, cid: mc.search("memory", k="5"),  # type: ignore[arg-type]
     ValidationError, "validation_error"),
    ("boolean k", lambda mc, cid: mc.search("memory", k=True), ValidationError, "validation_error"),
    ("string derived version", lambda mc, cid: mc.add("fine text", derived_from=[{"id": cid, "version": "1"}]),
     ValidationError, "validation_error"),
    # Naive datetimes nowhere (as ``as_of`` above).
    ("naive occurred_at", lambda mc, cid: mc.add("fine text", source={"occurred_at": datetime(2020, 1, 1)}),
     ValidationError, "validation_error"),
    ("naive occurred_at string", lambda mc, cid: mc.update(cid, source={"occurred_at": "2020-01-01T00:00:00"}),
     ValidationError, "validation_error"),
    ("naive filter", lambda mc, cid: mc.search("memory", filters={"created_after": datetime(2020, 1, 1)}),
     ValidationError, "validation_error"),
]


@pytest.mark.parametrize(("call", "error", "code"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_bad_input_is_rejected_and_changes_nothing(
    open_mc: Callable[..., memcubed.Memcubed], location: str, raw_counts: Counts,
    call: Callable[[memcubed.Memcubed, str], object], error: type[MemcubedError], code: str,
) -> None:
    mc = open_mc(location, settings=Settings(max_text_chars=100))
    mc.create_principal("alice")
    mc.create_principal("bob")
    cube_id = mc.add("the one good memory", tags=["kept"]).id
    mc.share(cube_id, "alice")
    before = _snapshot(mc, cube_id, location, raw_counts)
    with pytest.raises(error) as info:
        call(mc, cube_id)
    assert type(info.value) is error
    assert info.value.code == code
    assert info.value.to_dict()["code"] == code
    assert _snapshot(mc, cube_id, location, raw_counts) == before


def test_validation_errors_name_the_field(mc: memcubed.Memcubed) -> None:
    with pytest.raises(ValidationError) as info:
        mc.add("fine", importance=3)
    assert [e["field"] for e in info.value.details["errors"]] == ["importance"]
    with pytest.raises(ValidationError) as info:
        mc.search("q", filters={"colour": "red"})
    assert [e["field"] for e in info.value.details["errors"]] == ["filters.colour"]


def test_text_at_the_limit_is_accepted(open_mc: Callable[..., memcubed.Memcubed], location: str) -> None:
    mc = open_mc(location, settings=Settings(max_text_chars=100))
    assert len(mc.add("x" * 100).text or "") == 100


def test_batch_larger_than_max_batch(open_mc: Callable[..., memcubed.Memcubed], location: str) -> None:
    mc = open_mc(location, settings=Settings(max_batch=2))
    with pytest.raises(BudgetExceeded):
        mc.add_many([{"text": "a"}, {"text": "b"}, {"text": "c"}])
    assert mc.search("a b c", mode="lexical").hits == []


@given(importance=st.floats(allow_nan=True, allow_infinity=True))
def test_importance_is_accepted_exactly_within_0_and_1(mc: memcubed.Memcubed, importance: float) -> None:
    inside = 0.0 <= importance <= 1.0
    if inside:
        assert mc.add("weighted memory", importance=importance).importance == importance
    else:
        with pytest.raises(ValidationError):
            mc.add("weighted memory", importance=importance)


@given(bad_id=st.text(max_size=40).filter(lambda s: len(s.strip()) != 36))
def test_any_malformed_id_is_a_validation_error(mc: memcubed.Memcubed, bad_id: str) -> None:
    with pytest.raises(ValidationError):
        mc.get(bad_id)
    with pytest.raises(ValidationError):
        mc.add("imported", id=bad_id)


def test_the_strict_checks_accept_good_input_alike_on_every_backend(mc: memcubed.Memcubed) -> None:
    from datetime import UTC, timedelta, timezone

    at = datetime(2020, 1, 1, 9, tzinfo=timezone(timedelta(hours=2)))
    cube = mc.add("fine text", importance=1, meta={"nested": [{"k": "v"}, 1.5, True, None]}, derived_from=[],
                  source={"type": "document", "uri": "doc://ünïcode ✓ 東京", "ref": "p1", "occurred_at": at})
    assert cube.importance == 1.0 and cube.source.uri == "doc://ünïcode ✓ 東京"
    assert cube.source.occurred_at == datetime(2020, 1, 1, 7, tzinfo=UTC)
    assert mc.search("fine", k=1, filters={"created_after": "2020-01-01T00:00:00Z"}).hits[0].cube.id == cube.id
    assert mc.update(cube.id, expected_version=1, importance=0).importance == 0.0
    # meta is stored as escaped JSON, so a NUL inside it is kept, alike on every backend.
    assert mc.update(cube.id, meta={"k\x00": ["a\x00b"]}).meta == {"k\x00": ["a\x00b"]}
    assert mc.get(cube.id).meta == {"k\x00": ["a\x00b"]}
