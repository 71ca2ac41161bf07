"""The KV prefix tree as policies see it: which chain paths are stored, what each costs, what each saves.

A path is a canonical-order prefix of a set (``SetKey``); caching a set stores a segment for each of its
prefixes, and a read is served from KV up to the longest prefix of its set that is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from memcubed.engines.scheduler.signals import SetKey
from memcubed.engines.scheduler.view import Derived, View

__all__ = ["Tree", "activation_use", "existing_paths"]


def existing_paths(view: View) -> dict[SetKey, str]:
    """Stored segment paths of live, fresh activation cubes → blob digest (exact chains only)."""
    found: dict[SetKey, str] = {}
    for cube in view.derived:
        fresh = cube.kind == "activation" and not cube.stale and not cube.pending
        if fresh and len(cube.segments) == len(cube.sources):
            for i, digest in enumerate(cube.segments):
                found.setdefault(cube.sources[: i + 1], digest)
    return found


def activation_use(view: View, *, working_sets_only: bool = False) -> dict[str, int]:
    """KV bytes on disk per namespace: the distinct segment blobs of its live activation cubes (or only of
    its working sets)."""
    digests: dict[str, set[str]] = {}
    for cube in view.derived:
        if cube.kind == "activation" and not cube.pending and (cube.working_set or not working_sets_only):
            digests.setdefault(cube.namespace, set()).update(cube.segments)
    return {ns: sum(view.segment_bytes.get(d, 0) for d in ds) for ns, ds in sorted(digests.items())}


class Tree:
    """A prefix-closed set of chosen paths, with the bytes and compile tokens each new path costs."""

    def __init__(self, view: View, existing: Mapping[SetKey, str]) -> None:
        self.view = view
        self.existing = existing
        self.paths: set[SetKey] = set()

    def segment_bytes(self, path: SetKey) -> int:
        """Bytes of the segment at ``path``: the stored blob's size, else estimated from its tokens."""
        digest = self.existing.get(path)
        if digest is not None and digest in self.view.segment_bytes:
            return self.view.segment_bytes[digest]
        return round(self.view.tokens(path[-1:]) * self.view.config.bytes_per_token)

    def new_paths(self, chain: SetKey) -> list[SetKey]:
        return [chain[: i + 1] for i in range(len(chain)) if chain[: i + 1] not in self.paths]

    def marginal(self, chain: SetKey) -> tuple[int, int]:
        """(bytes, tokens to compile) that adding ``chain`` costs on top of the chosen paths."""
        fresh = self.new_paths(chain)
        return (sum(self.segment_bytes(p) for p in fresh),
                sum(self.view.tokens(p[-1:]) for p in fresh if p not in self.existing))

    def add(self, chain: SetKey) -> None:
        self.paths.update(chain[: i + 1] for i in range(len(chain)))

    def served(self, key: SetKey) -> int:
        """Prefill tokens of a read of ``key`` served from the chosen paths (its longest stored prefix)."""
        best = 0
        for i in range(len(key)):
            if key[: i + 1] not in self.paths:
                break
            best = i + 1
        return self.view.tokens(key[:best])

    def covers(self, cube: Derived) -> bool:
        return all(cube.sources[: i + 1] in self.paths for i in range(len(cube.sources)))


def common_prefix(a: Sequence[object], b: Sequence[object]) -> int:
    """Length of the longest common prefix of two chains (or of any two sequences, such as token ids)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def prefixes(keys: Iterable[SetKey]) -> list[SetKey]:
    """Every non-empty prefix of ``keys``, deduplicated, in sorted order."""
    return sorted({k[: i + 1] for k in keys for i in range(len(k))})
