"""Simulated KV-cache for closed models: cubes rendered as a byte-stable prompt prefix.

A provider's prompt cache hits only on an identical leading byte sequence, so the prefix depends
on nothing but the set of ``(id, version, text)``: cubes are sorted by id then version, wrapped in
a fixed header and footer, with no timestamps, randomness or input order leaking in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from memcubed.backends.models.base import Message
from memcubed.engines.kvcache.prefix import CubeText, ordered

__all__ = ["PREFIX_FOOTER", "PREFIX_HEADER", "render_prefix", "with_prefix"]

PREFIX_HEADER = "The following memories are known to be true. Use them when they are relevant.\n\n"
PREFIX_FOOTER = "(end of memories)\n"


def render_prefix(cubes: Iterable[CubeText]) -> str:
    """Return the memory prefix for ``cubes``: the same string for the same set, in any order and process.

    Raises:
        ValidationError: one (id, version) is given with two different texts.
    """
    body = "".join(f'<memory id="{cube.id}" version="{cube.version}">\n{cube.text}\n</memory>\n\n'
                   for cube in ordered(cubes))
    return f"{PREFIX_HEADER}{body}{PREFIX_FOOTER}"


def with_prefix(messages: Sequence[Message], cubes: Iterable[CubeText]) -> list[dict[str, str]]:
    """Return ``messages`` led by a system message holding the rendered prefix (the cache-friendly spot).

    An existing leading system message is appended after the prefix, so the prefix stays first.
    """
    prefix = render_prefix(cubes)
    rest = [dict(m) for m in messages]
    if rest and rest[0].get("role") == "system":
        return [{"role": "system", "content": f"{prefix}\n{rest[0]['content']}"}, *rest[1:]]
    return [{"role": "system", "content": prefix}, *rest]
