"""The static embedder: a model2vec folder loads and embeds offline; distillation writes one from an encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memcubed.backends.embedders import make_embedder
from memcubed.backends.embedders.static import StaticEmbedder, distil
from memcubed.errors import BackendUnavailable, ConfigurationError
from memcubed.testing.static_model import write_static_model


def _folder(tmp_path: Path) -> Path:
    """A hand-made model2vec folder: animal words share a direction, traffic words another."""
    return write_static_model(tmp_path, dim=4)


def test_a_model2vec_folder_embeds_by_mean_of_its_tokens(tmp_path: Path) -> None:
    embedder = make_embedder(f"static:{_folder(tmp_path)}")
    assert embedder is not None and embedder.dim == 4 and embedder.name == f"static:{tmp_path}"
    rows = embedder.embed(["dog cat", "car road", "pet", "zebra", ""])
    assert rows.shape == (5, 4) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows[:3], axis=1), 1.0, rtol=1e-6)
    assert rows[0] @ rows[2] > 0.9 and abs(rows[0] @ rows[1]) < 1e-6
    assert not rows[3].any() and not rows[4].any()  # unknown words only, or nothing: a zero row, never NaN
    assert embedder.embed([]).shape == (0, 4)


def test_a_broken_folder_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(BackendUnavailable):
        StaticEmbedder(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BackendUnavailable):
        StaticEmbedder(empty)
    with pytest.raises(ConfigurationError):
        make_embedder("stat1c")


def test_distillation_writes_a_loadable_folder(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *[f"w{i}" for i in range(40)]]
    source = tmp_path / "encoder"
    BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}).save_pretrained(source)
    BertModel(BertConfig(vocab_size=45, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(source)
    distil(source, tmp_path / "static", dim=8)
    embedder = StaticEmbedder(tmp_path / "static")
    assert embedder.dim == 8
    rows = embedder.embed(["w1 w2", "w3"])
    assert rows.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-5)
