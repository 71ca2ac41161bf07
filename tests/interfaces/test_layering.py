"""Layering over imports: interfaces call the kernel; they never import a backend or an engine.

Every module under ``memcubed/interfaces`` is parsed (imports inside functions and under ``TYPE_CHECKING``
count too); what they build comes from the composition root, ``memcubed.composition``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import memcubed

ROOT = Path(memcubed.__file__).parent
ALLOWED = ("memcubed.kernel", "memcubed.schemas", "memcubed.errors", "memcubed.settings", "memcubed.cube",
           "memcubed.composition", "memcubed.interfaces", "memcubed.datasets")
"""What an interface may import from memcubed (``datasets`` loads the demo conversations; it is no backend)."""
FORBIDDEN = ("memcubed.backends", "memcubed.engines")


def _package(path: Path) -> str:
    return ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    """The memcubed modules ``path`` (a module of ``package``) imports, absolute, with their line numbers."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
            found += [(node.lineno, f"{base}.{alias.name}" if base == "memcubed" else base) for alias in node.names]
    return [(line, name) for line, name in found if name == "memcubed" or name.startswith("memcubed.")]


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_no_interface_imports_a_backend_or_an_engine() -> None:
    modules = sorted((ROOT / "interfaces").rglob("*.py"))
    assert len(modules) > 10
    violations = [f"{m.relative_to(ROOT)}:{line} imports {name}" for m in modules
                  for line, name in _imports(m, _package(m))
                  if _under(name, FORBIDDEN) or not (_under(name, ALLOWED) or name == "memcubed.__version__")]
    assert violations == []


def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The walker finds plain, from-, relative and function-local imports (so the test above can fail)."""
    sample = tmp_path / "probe.py"
    sample.write_text("import memcubed.engines.kvcache\nfrom memcubed.backends import blobs\n"
                      "from ...backends import sqlite\ndef f():\n    from memcubed import engines\n")
    names = [name for _, name in _imports(sample, "memcubed.interfaces.cli")]
    assert names == ["memcubed.engines.kvcache", "memcubed.backends", "memcubed.backends", "memcubed.engines"]
