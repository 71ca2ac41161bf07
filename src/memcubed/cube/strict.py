"""One input check for every field of the shared schemas, so that every backend takes the same input.

PostgreSQL refuses a NUL character or a lone surrogate in text and JSON where SQLite would store a
NUL (and then ``migrate`` to PostgreSQL fails); pydantic's lax mode reads ``True`` or ``"0.5"`` as a
number; a naive datetime means a different instant to every reader. Every input model (the
operation schemas and the value objects inside them, such as ``Source``) derives from ``Checked``,
which refuses all three, in every field and in everything nested in it (``meta`` included), and
publishes the NUL rule in its JSON Schema (every plain string property gets ``NO_NUL``):

* strings with a NUL character (PostgreSQL text cannot hold one; inside a mapping such as ``meta``,
  stored as escaped JSON, a NUL is fine on every backend) or a lone surrogate (no backend encodes one);
* booleans and strings given for a number;
* datetimes without a timezone (as ``get(as_of=...)`` always did).
"""

from __future__ import annotations

import functools
import types
from datetime import datetime
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

__all__ = ["NO_NUL", "Checked", "check_value"]

NO_NUL = r"^[^\x00]*$"
"""The part of the string check a JSON Schema can publish (a lone surrogate cannot be written in JSON Schema)."""


def _wants_number(annotation: Any) -> bool:
    """Whether a field's type is a number (``int``/``float``, optional or annotated), and nothing else."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _wants_number(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(annotation) if a is not type(None)]
        return bool(args) and all(_wants_number(a) for a in args)
    return annotation is int or annotation is float


@functools.lru_cache(maxsize=4096)
def _numeric(model: type[BaseModel], name: str) -> bool:
    field = model.model_fields.get(name)
    return field is not None and _wants_number(field.annotation)


def _bad_string(text: str, *, nul: bool) -> str | None:
    if nul and "\x00" in text:
        return f"holds a NUL character at position {text.index(chr(0))}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not valid Unicode at position {exc.start} (a lone surrogate)"
    return None


def check_value(value: Any) -> None:
    """Raise ``ValueError`` if ``value`` or anything nested in it cannot be stored the same way everywhere.

    Raises:
        ValueError: a string with a NUL character (outside a mapping) or a lone surrogate (anywhere), or
            a naive datetime.
    """
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, in_mapping = stack.pop()
        if isinstance(item, str):
            problem = _bad_string(item, nul=not in_mapping)
            if problem is not None:
                raise ValueError(f"a string {problem}")
        elif isinstance(item, datetime):
            if item.tzinfo is None or item.utcoffset() is None:
                raise ValueError("a datetime must carry a timezone (naive datetimes are ambiguous)")
        elif isinstance(item, dict):
            stack.extend((part, True) for pair in item.items() for part in pair)
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend((part, in_mapping) for part in item)


def _publish_no_nul(schema: dict[str, Any]) -> None:
    """Give every plain string property (optional, or in an array, too) the ``NO_NUL`` pattern."""
    stack: list[Any] = list(schema.get("properties", {}).values())
    while stack:
        prop = stack.pop()
        if not isinstance(prop, dict):
            continue
        if prop.get("type") == "string" and not {"pattern", "enum", "format", "const"} & prop.keys():
            prop["pattern"] = NO_NUL
        stack.extend(prop.get("anyOf", []))
        if prop.get("type") == "array":
            stack.append(prop.get("items"))
            stack.extend(prop.get("prefixItems", []))  # tuples, such as consolidate's (question, answer) pairs


class Checked(BaseModel):
    """Base of every input model: the checks in the module docstring run on every field."""

    model_config = ConfigDict(json_schema_extra=_publish_no_nul)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool | str) and info.field_name is not None and _numeric(cls, info.field_name):
            raise ValueError("must be a number, not a boolean or a string")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _storable_everywhere(cls, value: Any) -> Any:
        if not isinstance(value, BaseModel):  # a nested model ran its own checks
            check_value(value)
        return value
