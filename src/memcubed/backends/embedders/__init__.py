"""Embedders: the local transformers default and an OpenAI-compatible HTTP client."""

from __future__ import annotations

from memcubed.backends.base import Embedder
from memcubed.backends.embedders.local import DEFAULT_LOCAL_MODEL, TransformersEmbedder
from memcubed.backends.embedders.openai import OpenAIEmbedder
from memcubed.backends.embedders.static import StaticEmbedder
from memcubed.errors import ConfigurationError

__all__ = ["DEFAULT_LOCAL_MODEL", "OpenAIEmbedder", "StaticEmbedder", "TransformersEmbedder", "make_embedder"]

_LOADED: dict[str, Embedder] = {}


def make_embedder(spec: str, *, base_url: str | None = None, api_key: str | None = None,
                  query_runtime: str = "fp32") -> Embedder | None:
    """Build an embedder from a spec string; models load once per process (per query runtime).

    Specs: ``none``; ``local`` (packaged all-MiniLM-L6-v2, offline); ``local:<hub name or folder>``;
    ``static`` (a static model distilled from the packaged MiniLM on first use, cached; sub-millisecond
    queries); ``static:<model2vec folder>``; ``openai:<model>`` (needs ``base_url``). ``query_runtime``
    (``fp32`` | ``int8``) is what a ``local`` embedder embeds queries with; other kinds ignore it.

    Raises:
        ConfigurationError: the spec is not understood or lacks a base URL.
    """
    spec = spec.strip()
    if spec == "none":
        return None
    if spec == "local":  # one model, one instance: a store records the canonical name
        spec = f"local:{DEFAULT_LOCAL_MODEL}"
    key = f"{spec}\x00{query_runtime}" if spec.startswith("local:") else spec
    if key in _LOADED:
        return _LOADED[key]
    embedder: Embedder
    if spec.startswith("local:"):
        embedder = TransformersEmbedder(spec.removeprefix("local:"), query_runtime=query_runtime)
    elif spec == "static":
        embedder = StaticEmbedder()
    elif spec.startswith("static:"):
        embedder = StaticEmbedder(spec.removeprefix("static:"))
    elif spec.startswith("openai:"):
        if not base_url:
            raise ConfigurationError("an openai: embedder needs a base URL (MEMCUBED_EMBEDDER_BASE_URL)")
        embedder = OpenAIEmbedder(spec.removeprefix("openai:"), base_url=base_url, api_key=api_key)
    else:
        raise ConfigurationError(f"unknown embedder {spec!r}: use none, local, local:<model>, static,"
                                 f" static:<folder> or openai:<model>",
                                 field="embedder")
    _LOADED[key] = embedder
    return embedder
