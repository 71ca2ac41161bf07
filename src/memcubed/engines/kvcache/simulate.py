"""Simulated KV-cache for closed models: cubes rendered as a byte-stable prompt prefix.

A provider's prompt cache hits only on an identical leading byte sequence, so the prefix depends
on nothing but the set of cubes: sorted by id then version, each rendered by ``render_memory``
(the same blocks the KV path injects), led by ``MEMORY_NOTICE`` and closed by a fixed footer, with
no timestamps, randomness or input order leaking in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from memcubed.backends.models.base import Message
from memcubed.engines.kvcache.memory import MEMORY_NOTICE, CubeText, ordered, render_memory, with_notice

__all__ = ["PREFIX_FOOTER", "PREFIX_HEADER", "render_prefix", "with_prefix"]

PREFIX_HEADER = f"{MEMORY_NOTICE}\n\n"
PREFIX_FOOTER = "(end of memories)\n"


def render_prefix(cubes: Iterable[CubeText], *, canonical: bool = True) -> str:
    """Return the memory prefix for ``cubes``: the same string for the same set, in any order and process.

    With ``canonical=False`` the caller's order is kept (it must be deterministic itself, as a working
    set followed by its per-question extras is: each part in canonical order).

    Raises:
        ValidationError: one (id, version) is given with two different texts.
    """
    chain = ordered(cubes) if canonical else list(cubes)
    body = "".join(f"{render_memory(cube)}\n\n" for cube in chain)
    return f"{PREFIX_HEADER}{body}{PREFIX_FOOTER}"


def with_prefix(messages: Sequence[Message], cubes: Iterable[CubeText], *,
                canonical: bool = True) -> list[dict[str, str]]:
    """Return ``messages`` led by a system message holding the rendered prefix (the cache-friendly spot).

    An existing leading system message is appended after the prefix, so the prefix stays first.
    ``canonical`` as in ``render_prefix``.
    """
    return with_notice(messages, render_prefix(cubes, canonical=canonical))
