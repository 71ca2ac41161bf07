"""The language-model Protocols: every model completes chats; open models also expose their KV-cache."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Generation", "KVLanguageModel", "LanguageModel", "Message"]

Message = Mapping[str, str]
"""A chat message: ``{"role": "system" | "user" | "assistant", "content": ...}``."""


@dataclass(frozen=True)
class Generation:
    """The result of a greedy generation.

    Attributes:
        text: the decoded new tokens (special tokens dropped).
        token_ids: the new token ids, the end-of-sequence token excluded.
        ttft_s: seconds from the call until the first new token was chosen (prefill included).
        total_s: seconds for the whole call.
    """

    text: str
    token_ids: list[int]
    ttft_s: float
    total_s: float


@runtime_checkable
class LanguageModel(Protocol):
    """Anything that answers a chat: a local model or a remote OpenAI-compatible API."""

    name: str
    """Identity of the model for logs and settings (``local:<model>``, ``openai:<model>``)."""

    def complete(self, messages: Sequence[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
                 seed: int | None = None) -> str:
        """Return the model's reply to ``messages``: greedy where the backend allows, or sampled at
        ``temperature`` (> 0) from ``seed``, which makes a sample repeatable on the same model and backend.

        Raises:
            BackendUnavailable: the model or service cannot be reached.
        """
        ...


@runtime_checkable
class KVLanguageModel(LanguageModel, Protocol):
    """A model whose attention cache can be read, stored and handed back (activation memory).

    Tensors are ``torch.Tensor``; they are typed ``Any`` so this module does not import torch.
    """

    @property
    def fingerprint(self) -> str:
        """sha256 identifying config, weights and tokenizer; KV-caches only fit the model they came from."""
        ...

    @property
    def dtype(self) -> Any:
        """The torch dtype the model computes in."""
        ...

    def encode(self, text: str) -> list[int]:
        """Return the token ids of ``text`` without special tokens."""
        ...

    def new_cache(self, layers: Sequence[tuple[Any, Any]] | None = None) -> Any:
        """Return a fresh cache, filled with per-layer ``(keys, values)`` when given (tensors are copied)."""
        ...

    def cache_layers(self, cache: Any) -> list[tuple[Any, Any]]:
        """Return a cache's per-layer ``(keys, values)``, each ``(1, kv_heads, tokens, head_dim)``."""
        ...

    def forward(self, ids: Sequence[int], *, cache: Any = None) -> tuple[Any, Any]:
        """Run ``ids`` on top of ``cache`` (mutated in place); return (last position's logits, cache)."""
        ...

    def greedy(self, ids: Sequence[int], *, cache: Any = None, max_new_tokens: int = 64) -> Generation:
        """Continue ``ids`` (placed after ``cache``, which is mutated) greedily until EOS or the limit."""
        ...

    def sample(self, ids: Sequence[int], *, temperature: float, seed: int, cache: Any = None,
               max_new_tokens: int = 64) -> Generation:
        """Continue ``ids`` like ``greedy``, each token drawn at ``temperature`` from a generator seeded ``seed``."""
        ...

    def chat_ids(self, messages: Sequence[Message]) -> list[int]:
        """Return the token ids of ``messages`` in the model's chat template, ready for the reply."""
        ...
