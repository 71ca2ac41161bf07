"""A language model behind any OpenAI-compatible ``/chat/completions`` endpoint (no KV access)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from memcubed.backends.models.base import Message
from memcubed.backends.openai_http import openai_client
from memcubed.errors import BackendUnavailable

__all__ = ["OpenAICompatibleLM"]


class OpenAICompatibleLM:
    """Chat completions over HTTP; activation memory reaches it as a simulated (prefix) cache only.

    Args:
        model: the provider's model name.
        base_url: e.g. ``https://api.openai.com/v1`` or a local server.
        api_key: bearer token, if the server needs one.
        timeout: seconds per request.
        temperature: sampling temperature sent with every request (0 asks for greedy answers).

    Raises:
        ConfigurationError: ``base_url`` is not an http(s) URL.
    """

    def __init__(self, model: str, *, base_url: str, api_key: str | None = None, timeout: float = 120.0,
                 temperature: float = 0.0) -> None:
        self._client = openai_client(base_url, api_key=api_key, timeout=timeout)
        self.name = f"openai:{model}"
        self.model = model
        self.temperature = temperature

    def complete(self, messages: Sequence[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
                 seed: int | None = None) -> str:
        """Return the first choice's message content; a ``temperature`` above 0 replaces the model's own for this
        request, and ``seed`` is sent as the API's ``seed`` (servers that honour it repeat the sample).

        Raises:
            BackendUnavailable: the server cannot be reached, answered with an error or with an unexpected body.
        """
        body = {"model": self.model, "messages": [dict(m) for m in messages], "max_tokens": max_new_tokens,
                "temperature": temperature if temperature > 0 else self.temperature}
        if seed is not None:
            body["seed"] = seed
        try:
            response = self._client.post("/chat/completions", json=body)
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise BackendUnavailable(f"chat completion request failed: {exc}", model=self.model) from exc
        if not isinstance(content, str):
            raise BackendUnavailable("chat completion returned no text content", model=self.model)
        return content

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
