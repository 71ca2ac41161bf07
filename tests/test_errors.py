"""The one error hierarchy: every class under MemcubedError, a unique stable code, the documented tree."""

from __future__ import annotations

import inspect
import json
import re

import pytest

import memcubed.errors as errors
from memcubed.errors import MemcubedError

CLASSES = [cls for _, cls in inspect.getmembers(errors, inspect.isclass) if cls.__module__ == errors.__name__]


def _documented_tree() -> dict[str, str | None]:
    """Parse the module docstring's tree into {class name: parent name}."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^[\s│├└─]*([A-Z][A-Za-z]+)\b", line)
        if not match or match.group(1) not in {c.__name__ for c in CLASSES}:
            continue
        depth = match.start(1)  # the deeper the name is indented, the further down the tree
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match.group(1)] = stack[-1][1] if stack else None
        stack.append((depth, match.group(1)))
    return parents


def test_every_class_is_a_memcubed_error() -> None:
    assert MemcubedError in CLASSES
    assert len(CLASSES) >= 14
    for cls in CLASSES:
        assert issubclass(cls, MemcubedError)
        assert issubclass(cls, Exception)


def test_codes_are_unique_snake_case_and_own() -> None:
    codes = [cls.code for cls in CLASSES]
    assert len(set(codes)) == len(codes)
    for cls in CLASSES:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", cls.code), cls
        assert "code" in vars(cls), f"{cls.__name__} inherits its parent's code"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_to_dict_shape(cls: type[MemcubedError]) -> None:
    exc = cls("something went wrong", id="abc", version=3)
    body = exc.to_dict()
    assert body == {"code": cls.code, "message": "something went wrong", "details": {"id": "abc", "version": 3}}
    assert json.loads(json.dumps(body)) == body
    assert str(exc) == "something went wrong"
    assert cls("no details").to_dict()["details"] == {}


@pytest.mark.parametrize("cls", [c for c in CLASSES if c is not MemcubedError], ids=lambda c: c.__name__)
def test_each_error_says_when_it_is_raised(cls: type[MemcubedError]) -> None:
    assert (cls.__doc__ or "").startswith("Raised when")


def test_docstring_tree_matches_the_classes() -> None:
    tree = _documented_tree()
    assert set(tree) == {cls.__name__ for cls in CLASSES}
    for cls in CLASSES:
        parent = cls.__bases__[0]
        expected = None if cls is MemcubedError else parent.__name__
        assert tree[cls.__name__] == expected, cls.__name__


def test_errors_can_be_caught_by_family() -> None:
    with pytest.raises(errors.NotFound):
        raise errors.UnknownPrincipal("ghost")
    with pytest.raises(errors.Conflict):
        raise errors.VersionConflict("stale")
    with pytest.raises(errors.ConfigurationError):
        raise errors.DependencyMissing("pip install it")
    with pytest.raises(errors.StorageError):
        raise errors.BackendUnavailable("down")
