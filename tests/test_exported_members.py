"""``memcubed.__all__`` is the public API: it lists exactly what the package exports (httpx's habit)."""

from __future__ import annotations

import importlib
import importlib.metadata
import types

import pytest

import memcubed


def test_all_imports_are_exported() -> None:
    """Every public name bound in ``memcubed`` is in ``__all__``, apart from subpackages bound by importing them."""
    public = {
        name for name, value in vars(memcubed).items()
        if not name.startswith("_")
        and not (isinstance(value, types.ModuleType) and name not in memcubed.__all__
                 and value.__name__ == f"memcubed.{name}")
    }
    assert set(memcubed.__all__) == public


def test_all_is_sorted_and_unique() -> None:
    assert memcubed.__all__ == sorted(set(memcubed.__all__))


def test_every_exported_name_resolves() -> None:
    for name in memcubed.__all__:
        assert getattr(memcubed, name) is not None


def test_open_is_open_store() -> None:
    assert memcubed.open is memcubed.open_store


def test_version_matches_the_distribution() -> None:
    assert memcubed.__version__ == importlib.metadata.version("memcubed")


def test_every_error_is_exported() -> None:
    errors = {name for name, value in vars(memcubed.errors).items()
              if isinstance(value, type) and issubclass(value, Exception) and value.__module__ == "memcubed.errors"}
    assert errors == set(memcubed.errors.__all__)
    assert errors <= set(memcubed.__all__)
    assert all(getattr(memcubed, name) is getattr(memcubed.errors, name) for name in errors)


@pytest.mark.parametrize("module", ["memcubed.cube", "memcubed.schemas", "memcubed.kernel", "memcubed.errors",
                                    "memcubed.backends.embedders", "memcubed.backends.sqlite",
                                    "memcubed.interfaces.api", "memcubed.interfaces.rest",
                                    "memcubed.interfaces.mcp"])
def test_subpackage_all_names_resolve(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__ == sorted(set(mod.__all__))
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names {name!r}, which it does not define"
