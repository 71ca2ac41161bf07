"""The HTTP client shared by every OpenAI-compatible backend (embedders, language models)."""

from __future__ import annotations

import httpx

from memcubed.errors import ConfigurationError

__all__ = ["openai_client"]


def openai_client(base_url: str, *, api_key: str | None, timeout: float) -> httpx.Client:
    """Return an httpx client for an OpenAI-compatible API at ``base_url`` with a bearer ``api_key``.

    Raises:
        ConfigurationError: ``base_url`` is not an http(s) URL.
    """
    if not base_url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base_url must be an http(s) URL, got {base_url!r}", field="base_url")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)
