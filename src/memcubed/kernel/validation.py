"""Turning caller input into validated schemas, with our ValidationError on failure."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic

from memcubed.errors import ValidationError

__all__ = ["check_text", "from_pydantic", "parse"]

M = TypeVar("M", bound=pydantic.BaseModel)


def parse(model: type[M], data: M | dict[str, Any]) -> M:
    """Validate ``data`` as ``model``.

    Raises:
        ValidationError: with ``details["errors"]`` listing each bad field and why.
    """
    try:
        if isinstance(data, model):
            return model.model_validate(data.model_dump(exclude_unset=True))
        if not isinstance(data, dict):
            raise ValidationError(f"expected a {model.__name__} or a mapping, got {type(data).__name__}")
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise from_pydantic(exc, model.__name__) from exc


def from_pydantic(exc: pydantic.ValidationError, name: str) -> ValidationError:
    """Our ``ValidationError`` for pydantic's: ``details["errors"]`` lists each bad field and why (never the
    rejected values, which are the caller's data)."""
    errors = [
        {"field": ".".join(str(p) for p in err["loc"]) or name, "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return ValidationError(f"invalid {name}: {summary}", errors=errors)


def check_text(text: str, limit: int) -> None:
    """Raise unless ``text`` fits the configured size limit and can be stored as UTF-8.

    Raises:
        ValidationError: the text is longer than ``limit`` characters, holds a lone surrogate, or a NUL
            character (PostgreSQL text cannot hold one, and every backend accepts the same input).
    """
    if len(text) > limit:
        raise ValidationError(f"text has {len(text)} characters; the limit is {limit}", field="text",
                              length=len(text), limit=limit)
    if "\x00" in text:
        raise ValidationError(f"text holds a NUL character at position {text.index(chr(0))}", field="text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Lone surrogates (e.g. from a JSON "\ud800" escape) are valid str but no database stores them.
        raise ValidationError(f"text is not valid Unicode at position {exc.start}", field="text") from exc
