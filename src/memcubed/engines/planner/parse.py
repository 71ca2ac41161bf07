"""Reading a plan out of a language model's reply: JSON found in code fences or after prose, strictly parsed.

Models wrap JSON in prose and Markdown fences, stop mid-object when they run out of tokens, and repeat
keys. The reader takes the first fenced block, else the first balanced ``{…}`` (or ``[…]``: a bare list
of steps) in the reply, and refuses anything ambiguous: a truncated object, duplicate keys, ``NaN``, or
JSON that is not a valid :class:`~memcubed.schemas.plan.Plan`. Nothing here touches a store.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic

from memcubed.errors import MalformedPlan
from memcubed.schemas.plan import Plan

__all__ = ["MAX_REPLY_CHARS", "extract_json", "parse_plan"]

MAX_REPLY_CHARS = 200_000
"""The longest model reply read; a longer one is refused unread."""

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_OPENERS = {"{": "}", "[": "]"}
_MAX_STARTS = 32  # candidate openers tried in one reply (prose may hold a stray brace)


def _balanced_end(text: str, start: int) -> int | None:
    """The index just past the bracket closing the one at ``start`` (strings and escapes honoured), or
    None when the text ends first: the JSON is truncated."""
    stack = [_OPENERS[text[start]]]
    in_string = escaped = False
    for i in range(start + 1, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in _OPENERS:
            stack.append(_OPENERS[ch])
        elif ch in "}]":
            if ch != stack.pop():
                return i + 1  # mismatched: let the decoder say where
            if not stack:
                return i + 1
    return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedPlan(f"the plan's JSON repeats the key {key!r}", reason="duplicate_key", key=key[:64])
        out[key] = value
    return out


def _refuse_constant(name: str) -> Any:
    raise MalformedPlan(f"the plan's JSON holds {name}, which is not JSON", reason="invalid_json")


def _decode(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise MalformedPlan(f"the plan is not valid JSON: {exc.msg} at character {exc.pos}", reason="invalid_json",
                            position=exc.pos) from exc
    except RecursionError as exc:
        raise MalformedPlan("the plan's JSON is nested too deeply", reason="too_deep") from exc


def extract_json(reply: str) -> Any:
    """Return the JSON value a model's reply holds: its first fenced block, else its first balanced
    object or array (prose before and after is ignored).

    Raises:
        MalformedPlan: the reply is too long, holds no JSON object, holds a truncated one (``reason``
            ``truncated``), or malformed JSON (``invalid_json``, ``duplicate_key``, ``too_deep``).
    """
    if not isinstance(reply, str):
        raise MalformedPlan("the model's reply is not text", reason="no_json")
    if len(reply) > MAX_REPLY_CHARS:
        raise MalformedPlan(f"the model's reply has {len(reply)} characters; at most {MAX_REPLY_CHARS} are read",
                            reason="too_long", length=len(reply))
    fence = _FENCE.search(reply)
    if fence is not None and fence.group(1).lstrip()[:1] in _OPENERS:
        reply = fence.group(1)
    starts = [m.start() for m in re.finditer(r"[{\[]", reply)]
    if not starts:
        raise MalformedPlan("the model's reply holds no JSON object", reason="no_json")
    first_error: MalformedPlan | None = None
    truncated = False  # an earlier candidate runs to the end: later ones lie inside it
    skip_until = tried = 0
    for start in starts:
        if start < skip_until:
            continue  # inside a candidate already read: never reinterpret part of a malformed value
        tried += 1
        if tried > _MAX_STARTS:
            break
        end = _balanced_end(reply, start)
        if end is None:
            truncated = True
            first_error = first_error or MalformedPlan(
                "the plan's JSON is truncated: it ends before its closing bracket", reason="truncated", position=start)
            continue
        skip_until = end
        try:
            value = _decode(reply[start:end])
        except MalformedPlan as exc:
            if exc.details.get("reason") == "duplicate_key":
                raise  # a well-formed but ambiguous object: never fall through to a later one
            first_error = first_error or exc
            continue
        if truncated:
            # Inside an unclosed bracket only a whole plan counts (a stray brace in prose before it); a step
            # object or a list of a truncated plan does not.
            if isinstance(value, dict) and "steps" in value:
                return value
        elif isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            return value
    raise first_error or MalformedPlan("the model's reply holds no JSON object", reason="no_json")


def parse_plan(reply: str) -> Plan:
    """Return the :class:`Plan` a model's reply holds (a bare list is read as its steps).

    Raises:
        MalformedPlan: no JSON, truncated or malformed JSON (see :func:`extract_json`), or JSON that is not
            a valid plan (``reason`` ``invalid_plan``, ``details["errors"]`` per field).
    """
    value = extract_json(reply)
    if isinstance(value, list):
        value = {"steps": value}
    try:
        return Plan.model_validate(value)
    except pydantic.ValidationError as exc:
        # Fields and messages only, never the rejected values (the model may echo memories into them).
        errors = [{"field": ".".join(str(p) for p in err["loc"]) or "plan", "message": err["msg"]}
                  for err in exc.errors(include_url=False, include_input=False)][:20]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        raise MalformedPlan(f"the model's reply is not a valid plan: {summary}", reason="invalid_plan",
                            errors=errors) from exc
