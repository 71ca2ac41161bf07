"""The Embedder Protocol: what a store's embedding model provides (re-exported by ``backends.base``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["Embedder"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str
    """Identity of the model, and the spec that builds it again (``make_embedder``); ``fingerprint`` tells
    two versions of its weights apart."""
    dim: int
    """Vector dimension."""
    window_tokens: int
    """Tokens the model sees of a text; a longer memory is also embedded by window (0: never chunked)."""

    @property
    def fingerprint(self) -> str:
        """What decides the vectors (weights, tokenizer, recipe), hashed: a store records it at creation and
        refuses an embedder with another one (``backends.embedders.fingerprint``)."""
        ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Return one normalised row per text, shape ``(len(texts), dim)``.

        Raises:
            BackendUnavailable: the model or service cannot be reached.
        """
        ...
