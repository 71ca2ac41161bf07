"""The OpenAI-compatible embedder over real HTTP, against a local server backed by the real model."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

import memcubed
from memcubed.backends.embedders import OpenAIEmbedder, TransformersEmbedder, make_embedder
from memcubed.testing.openai_server import serve_openai


def test_vectors_match_the_model_behind_the_server(embedder: TransformersEmbedder) -> None:
    texts = ["the cat sat on the mat", "quarterly revenue grew", "a third sentence"]
    with serve_openai(embedder=embedder, api_key="sekret") as url:
        remote = OpenAIEmbedder("minilm", base_url=url, api_key="sekret", batch_size=2)
        vectors = remote.embed(texts)
        remote.close()
    assert remote.name == "openai:minilm" and remote.dim == 384
    np.testing.assert_allclose(vectors, embedder.embed(texts), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_store_indexed_through_http(embedder: TransformersEmbedder, tmp_path: Path) -> None:
    with serve_openai(embedder=embedder) as url:
        remote = OpenAIEmbedder("minilm", base_url=url)
        with memcubed.open(tmp_path / "remote.db", embedder=remote) as mc:
            mc.add("Quarterly revenue grew by ten percent")
            mc.add("Dogs love long walks")
            hits = mc.search("money the company earned", mode="vector", k=1).hits
        remote.close()
    assert hits[0].cube.text == "Quarterly revenue grew by ten percent"


def test_wrong_key_and_unreachable_server_are_backend_errors(embedder: TransformersEmbedder) -> None:
    refused = pytest.raises(memcubed.BackendUnavailable, match="401")
    with serve_openai(embedder=embedder, api_key="sekret") as url, refused:
        OpenAIEmbedder("minilm", base_url=url, api_key="wrong")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with pytest.raises(memcubed.BackendUnavailable):
        OpenAIEmbedder("minilm", base_url=f"http://127.0.0.1:{closed_port}/v1", timeout=2)


def test_configuration_errors() -> None:
    with pytest.raises(memcubed.ConfigurationError):
        OpenAIEmbedder("minilm", base_url="ftp://example")
    with pytest.raises(memcubed.ConfigurationError):
        make_embedder("openai:minilm")
    with pytest.raises(memcubed.ConfigurationError):
        make_embedder("word2vec")
    assert make_embedder("none") is None
