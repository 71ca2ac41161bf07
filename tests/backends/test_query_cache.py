"""The query-vector cache never answers with another text's or another embedder's vector, and stays bounded."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, pre_tokenizers

from memcubed.backends.embedders.querycache import QueryVectorCache
from memcubed.backends.embedders.static import StaticEmbedder


def _static(folder: Path, seed: int) -> StaticEmbedder:
    """A real static embedder over a random table (``seed`` picks the table)."""
    folder.mkdir()
    words = ["[UNK]", *[f"w{i}" for i in range(50)]]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()  # type: ignore[assignment]
    tokenizer.save(str(folder / "tokenizer.json"))
    table = np.random.default_rng(seed).normal(size=(len(words), 8)).astype(np.float32)
    save_file({"embeddings": table}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"hidden_dim": 8}))
    return StaticEmbedder(folder)


class _Counting:
    """Counts the texts the cache hands to the model (wraps a real embedder)."""

    def __init__(self, inner: StaticEmbedder) -> None:
        self.name, self.dim, self.window_tokens, self.inner = inner.name, inner.dim, inner.window_tokens, inner
        self.fingerprint = inner.fingerprint
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.seen.extend(texts)
        return self.inner.embed(texts)


def test_every_text_gets_its_own_vector_and_repeats_skip_the_model(tmp_path: Path) -> None:
    model = _Counting(_static(tmp_path / "a", 0))
    cache = QueryVectorCache(capacity=100)
    texts = [f"w{i} w{(i * 7) % 50}" for i in range(30)] + ["w1 w2", "w1  w2", "W1 w2", "w2 w1 "]
    for _ in range(3):
        for text in texts:
            np.testing.assert_array_equal(cache.vector(model, text), model.inner.embed([text])[0])
    assert model.seen == list(dict.fromkeys(texts))  # each distinct text embedded once, however near another
    assert cache.hits == 2 * len(texts)


def test_two_embedders_never_share_a_vector(tmp_path: Path) -> None:
    first, second = _static(tmp_path / "a", 0), _static(tmp_path / "b", 1)
    cache = QueryVectorCache()
    one, two = cache.vector(first, "w3 w4"), cache.vector(second, "w3 w4")
    assert not np.allclose(one, two)
    np.testing.assert_array_equal(two, second.embed(["w3 w4"])[0])


def test_cached_vectors_are_read_only_and_the_cache_is_bounded(tmp_path: Path) -> None:
    model = _Counting(_static(tmp_path / "a", 0))
    cache = QueryVectorCache(capacity=4)
    first = cache.vector(model, "w0")
    with pytest.raises(ValueError):
        first[0] = 42.0  # a caller cannot poison the next caller's vector
    for i in range(1, 10):
        cache.vector(model, f"w{i}")
    assert len(cache) == 4
    cache.vector(model, "w0")
    assert model.seen.count("w0") == 2  # evicted, so embedded again
    cache.vector(model, "w9")
    assert model.seen.count("w9") == 1  # recently used: still cached
    off = QueryVectorCache(capacity=0)
    off.vector(model, "w5")
    assert len(off) == 0


def test_a_model_rewritten_under_the_same_name_never_gets_the_old_vector(tmp_path: Path) -> None:
    """The key is the fingerprint: same folder (so same name), same dimension, other weights."""
    from memcubed.testing.static_model import write_static_model

    folder = write_static_model(tmp_path / "m")
    cache = QueryVectorCache()
    first = StaticEmbedder(folder)
    before = cache.vector(first, "my dog")
    write_static_model(folder, shift=0.5)
    second = StaticEmbedder(folder)
    assert (second.name, second.dim) == (first.name, first.dim) and second.fingerprint != first.fingerprint
    after = cache.vector(second, "my dog")
    np.testing.assert_allclose(after, second.embed(["my dog"])[0])
    assert not np.allclose(after, before) and cache.misses == 2
    assert cache.vector(first, "my dog") is before  # the old space's vector is still its own


def test_batched_vectors_embed_only_the_uncached_texts_once_and_match_single_lookups(tmp_path: Path) -> None:
    model = _Counting(_static(tmp_path / "b", 1))
    cache = QueryVectorCache(capacity=4)
    first = cache.vectors(model, ["w1", "w2", "w1", "w3"])
    assert model.seen == ["w1", "w2", "w3"]  # one batch, no repeats
    assert np.array_equal(first[0], first[2]) and not np.array_equal(first[0], first[1])
    again = cache.vectors(model, ["w3", "w2"])
    assert model.seen == ["w1", "w2", "w3"] and np.array_equal(again[0], first[3])
    assert np.array_equal(cache.vector(model, "w2"), model.inner.embed(["w2"])[0])
    cache.vectors(model, [f"w{i}" for i in range(10, 16)])
    assert len(cache) == 4  # bounded, like single lookups
    with pytest.raises(ValueError):
        first[0][0] = 1.0  # shared vectors are read-only
