"""An embedder for any OpenAI-compatible ``/embeddings`` endpoint."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import numpy as np
import numpy.typing as npt

from memcubed.backends.embedders.fingerprint import text_fingerprint
from memcubed.backends.openai_http import openai_client
from memcubed.errors import BackendUnavailable

__all__ = ["OpenAIEmbedder"]


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible HTTP API.

    Args:
        model: the provider's model name.
        base_url: e.g. ``https://api.openai.com/v1`` or a local server.
        api_key: bearer token, if the server needs one.
        dim: vector dimension; probed with one request when omitted.
    """

    def __init__(self, model: str, *, base_url: str, api_key: str | None = None, dim: int | None = None,
                 timeout: float = 60.0, batch_size: int = 128) -> None:
        self._client = openai_client(base_url, api_key=api_key, timeout=timeout)
        self.name = f"openai:{model}"
        self.model = model
        # A hosted model's weights cannot be read: it is known by its name (a provider that changes a model's
        # vectors under one name is not detected).
        self.fingerprint = text_fingerprint("openai", model)
        self.batch_size = batch_size
        self.window_tokens = 0  # hosted models take thousands of tokens: memories are not chunked
        self.dim = dim if dim is not None else int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Return one L2-normalised float32 row per text.

        Raises:
            BackendUnavailable: the server cannot be reached or answered with an error.
        """
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            try:
                response = self._client.post("/embeddings", json={"model": self.model, "input": batch})
                response.raise_for_status()
                data = sorted(response.json()["data"], key=lambda item: item["index"])
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                raise BackendUnavailable(f"embedding request failed: {exc}") from exc
            rows.extend(item["embedding"] for item in data)
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        normalised: npt.NDArray[np.float32] = matrix / np.maximum(norms, 1e-12)
        return normalised

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
