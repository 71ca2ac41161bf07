"""A MemCube from a ``cubes`` row of our own store, built without pydantic's validation when it cannot fail.

Every read of a cube by id (``load_cube(s)``, ``load_scoped``: a search's 30–40 candidates and neighbours) builds
a MemCube from its row. Validating each one (pydantic, plus ``Checked``'s per-field checks on ``Source`` and the
other value objects) was the largest cost of a search after the query embedding. A row our store wrote holds
only values that validation accepts unchanged, so ``cube_from_row`` first checks, cheaply and field by field,
that the row is of exactly that shape (plain types, enum members, ranges, lengths, no NUL or lone surrogate,
no unknown or missing keys) and then sets the models' fields as ``model_construct`` does; anything else — a
corrupted or tampered row, a value of another type — goes through ``validated_cube_from_row``, the validating
construction, so that it is refused (or coerced) exactly as before. Both give equal cubes with the same field
types, field order and fields set (``tests/backends/test_cube_row.py``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter

from memcubed.backends._common import parse_ts, stats_from_row
from memcubed.cube.model import BlobRef, CubeKind, CubeState, CubeStats, DerivedRef, Grant, MemCube, Right, Source

__all__ = ["cube_from_row", "validated_cube_from_row"]

_MAX_VERSION = 2**53
_DOC_KEYS = frozenset({"source", "derived_from", "tags", "payload", "segments", "acl_version", "meta"})
_SOURCE_KEYS = frozenset({"type", "uri", "ref", "occurred_at"})  # (max_length: type 64, uri 2048, ref 256)
_BLOB_KEYS = frozenset({"sha256", "size", "media_type"})
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KINDS = {k.value: k for k in CubeKind}
_STATES = {s.value: s for s in CubeState}
_RIGHTS = {int(r): r for r in Right}
_Model = TypeVar("_Model", bound=BaseModel)
_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)  # how pydantic reads Source.occurred_at from the JSON doc


def _built(cls: type[_Model], values: dict[str, Any]) -> _Model:
    """``cls.model_construct(**values)`` for ``values`` naming every field of ``cls`` in its declared order (as the
    callers build them): what it sets, without its per-field loop (which asks ``inspect.signature`` of each
    default factory even when every field is given). These are pydantic's instance attributes as of 2.14: a
    pydantic that sets others should fail ``test_cube_row``'s comparison with the validating construction."""
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", values)
    object.__setattr__(model, "__pydantic_fields_set__", set(values))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


class _Unusual(Exception):
    """A row value outside the shape our store writes: the validating construction decides."""


def cube_from_row(row: dict[str, Any], acl: list[dict[str, Any]]) -> MemCube:
    """Build a MemCube from a ``cubes`` row (a mapping of column to value) and its grants; the same cube, or the
    same error, as ``validated_cube_from_row``.

    Raises:
        pydantic.ValidationError: the row holds a value a MemCube cannot take (as the validating construction).
        ValueError: a timestamp column is not one ``format_ts`` wrote.
    """
    try:
        return _trusted(row, acl)
    except Exception:  # whatever the fast path cannot take, validation decides (and raises as before)
        return validated_cube_from_row(row, acl)


def validated_cube_from_row(row: dict[str, Any], acl: list[dict[str, Any]]) -> MemCube:
    """Build a MemCube from a ``cubes`` row and its grants through pydantic's validation (the reference
    ``cube_from_row`` must agree with)."""
    doc = _lifted(json.loads(row["doc"]), row["kind"])
    return MemCube(
        id=row["id"],
        kind=row["kind"],
        namespace=row["namespace"],
        owner=row["owner"],
        state=row["state"],
        version=row["version"],
        created_at=parse_ts(row["created_at"]),
        updated_at=parse_ts(row["updated_at"]),
        importance=row["importance"],
        model=row["model"],
        text=row["text"],
        forgotten=bool(row["forgotten"]),
        acl=[Grant.model_validate(g) for g in acl],
        stats=stats_from_row(row),
        valid_from=_maybe_parse(row.get("valid_from")),
        valid_to=_maybe_parse(row.get("valid_to")),
        **doc,
    )


def _lifted(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    """A document written before segments had their own field: lift them out of the user's ``meta``."""
    meta = doc.get("meta") or {}
    if "segments" not in doc and kind == "activation" and isinstance(meta.get("segments"), list):
        doc = {**doc, "segments": meta["segments"], "meta": {k: v for k, v in meta.items() if k != "segments"}}
    return doc


def _maybe_parse(value: str | None) -> datetime | None:
    return None if value is None else parse_ts(value)


def _trusted(row: dict[str, Any], acl: list[dict[str, Any]]) -> MemCube:
    """``validated_cube_from_row`` without validation, for a row of exactly the shape validation accepts
    unchanged (a document with every field, as ``cube_doc`` writes it); raises ``_Unusual`` (or a parsing
    error) for any other."""
    doc = _lifted(json.loads(row["doc"]), row["kind"])
    if type(doc) is not dict or doc.keys() != _DOC_KEYS:
        raise _Unusual
    return _built(MemCube, {  # MemCube's field order
        "id": _text(row["id"]), "kind": _KINDS[row["kind"]], "namespace": _text(row["namespace"]),
        "owner": _text(row["owner"]), "source": _source(doc["source"]), "derived_from": _derived(doc["derived_from"]),
        "created_at": parse_ts(row["created_at"]), "updated_at": parse_ts(row["updated_at"]),
        "version": _version(row["version"]), "importance": _importance(row["importance"]),
        "acl": [_grant(g) for g in acl], "tags": _strings(doc["tags"]), "state": _STATES[row["state"]],
        "stats": _stats(row), "model": _optional_text(row["model"]), "text": _optional_text(row["text"]),
        "payload": _payload(doc["payload"]), "segments": _strings(doc["segments"]),
        "acl_version": _integer(doc["acl_version"], 0), "meta": _meta(doc["meta"]), "forgotten": bool(row["forgotten"]),
        "valid_from": _maybe_parse(row.get("valid_from")), "valid_to": _maybe_parse(row.get("valid_to"))})


def _text(value: Any) -> str:
    if type(value) is not str:
        raise _Unusual
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _checked_text(value: Any, limit: int | None = None) -> str:
    """A string ``Checked`` accepts as it is: no NUL, no lone surrogate, within ``limit`` characters."""
    if type(value) is not str or "\x00" in value or (limit is not None and len(value) > limit):
        raise _Unusual
    if not value.isascii():
        value.encode("utf-8")  # UnicodeEncodeError (a ValueError) on a lone surrogate
    return value


def _integer(value: Any, low: int, high: int | None = None) -> int:
    if type(value) is not int or value < low or (high is not None and value > high):
        raise _Unusual
    return value


def _version(value: Any) -> int:
    return _integer(value, 1, _MAX_VERSION)


def _importance(value: Any) -> float:
    if type(value) is not float or not 0.0 <= value <= 1.0:
        raise _Unusual
    return value


def _grant(grant: dict[str, Any]) -> Grant:
    if grant.keys() != {"principal", "right", "accepted"} or type(grant["accepted"]) is not bool:
        raise _Unusual
    right = grant["right"]
    if type(right) is not int:
        raise _Unusual
    return _built(Grant, {"principal": _checked_text(grant["principal"]), "right": _RIGHTS[right],
                          "accepted": grant["accepted"]})


def _stats(row: dict[str, Any]) -> CubeStats:
    if type(row["hotness"]) is not float:
        raise _Unusual
    return _built(CubeStats, {"access_count": _integer(row["access_count"], -(2**63)),
                              "last_access": parse_ts(row["last_access"]) if row["last_access"] else None,
                              "hotness": row["hotness"]})


def _source(value: Any) -> Source:
    if type(value) is not dict or value.keys() != _SOURCE_KEYS:
        raise _Unusual
    when, uri, ref = value["occurred_at"], value["uri"], value["ref"]
    return _built(Source, {  # Source's field order
        "type": _checked_text(value["type"], 64), "uri": None if uri is None else _checked_text(uri, 2048),
        "ref": None if ref is None else _checked_text(ref, 256),
        "occurred_at": None if when is None else _aware(_DATETIME.validate_python(_checked_text(when)))})


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise _Unusual
    return value


def _derived(value: Any) -> list[DerivedRef]:
    if type(value) is not list:
        raise _Unusual
    out = []
    for ref in value:
        if type(ref) is not dict or ref.keys() != {"id", "version"}:
            raise _Unusual
        out.append(_built(DerivedRef, {"id": _checked_text(ref["id"]), "version": _version(ref["version"])}))
    return out


def _strings(value: Any) -> list[str]:
    if type(value) is not list or any(type(item) is not str for item in value):
        raise _Unusual
    return value


def _payload(value: Any) -> BlobRef | None:
    if value is None:
        return None
    if type(value) is not dict or value.keys() != _BLOB_KEYS:
        raise _Unusual
    sha = _checked_text(value["sha256"])
    if not _SHA256.fullmatch(sha):
        raise _Unusual
    return _built(BlobRef, {"sha256": sha, "size": _integer(value["size"], 0),
                            "media_type": _checked_text(value["media_type"])})


def _meta(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise _Unusual
    return value
