"""The vector-staging part of the ``StorageBackend`` Protocol: a second vector space filled beside the one
search uses, then switched to in one transaction (``kernel.reembed``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["StagedRow", "VectorStaging"]

StagedRow = tuple[int, str, npt.NDArray[np.float32], Sequence[npt.NDArray[np.float32]]]
"""(cube seq, the text that was embedded, its main vector, its later windows' vectors)."""


class VectorStaging(Protocol):
    """Another embedder's vectors, staged beside the ones search reads until :meth:`switch_vectors`."""

    def expect_space(self, record: str | None) -> None:
        """Refuse vector writes and vector searches from now on unless the store's embedder record is
        ``record`` (None: no check), so a process still holding the old embedder after a switch cannot mix
        vectors of two spaces."""
        ...

    def reembed_todo(self, after_seq: int, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` (seq, text) of live cubes with vectors whose new vector is not staged yet, after
        ``after_seq``, by seq. Forgotten cubes have no text and no vector: they are never among them."""
        ...

    def reembed_counts(self) -> tuple[int, int]:
        """(cubes with vectors, of those whose new vector is staged)."""
        ...

    def stage_vectors(self, rows: Sequence[StagedRow]) -> int:
        """Stage the new vectors of cubes whose text is still the one embedded (call inside a transaction);
        a cube changed or forgotten since is skipped (it is listed by ``reembed_todo`` again). Returns how
        many cubes were staged."""
        ...

    def begin_stage(self, dim: int) -> None:
        """Empty the stage and make it ready for ``dim``-dimensional vectors (call inside a transaction)."""
        ...

    def prepare_switch(self) -> None:
        """Build, beside the vectors search reads, whatever lets :meth:`switch_vectors` be short (PostgreSQL:
        the next space's graph index). Call outside any transaction, after staging: it may take long, and
        readers and writers go on meanwhile. An interrupted build leaves the store as it was; calling it
        again finishes it."""
        ...

    def clear_stage(self) -> None:
        """Drop every staged vector (call inside a transaction)."""
        ...

    def switch_vectors(self, dim: int) -> int:
        """Replace the vectors search reads by the staged ones, ``dim``-dimensional, and empty the stage
        (call inside a write transaction); return how many cubes it switched.

        Raises:
            Conflict: a cube with vectors has no staged vector (the caller stages it first).
        """
        ...
