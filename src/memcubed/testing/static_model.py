"""Tiny hand-made model2vec folders for tests: a static embedder that loads in milliseconds, offline.

Animal words share one direction of the table and traffic words another, so a search can tell them apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["VOCAB", "write_static_model"]

VOCAB = ["[UNK]", "dog", "cat", "pet", "car", "road", "drive"]
"""The words the tiny models know (``[UNK]`` is every other word)."""


def write_static_model(folder: Path, *, dim: int = 8, shift: float = 0.0) -> Path:
    """Write a model2vec folder of ``dim`` dimensions (at least 4; a store's vector index wants a multiple of 8)
    into ``folder`` and return it.

    Args:
        shift: added to the second component of every animal word: another value gives other weights
            (another fingerprint) with the same name, dimension and vocabulary.
    """
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    table = np.zeros((len(VOCAB), dim), np.float32)
    table[1:4, 0] = 1.0
    table[1:4, 1] = np.array([0.1, 0.2, 0.3], np.float32) + shift
    table[4:7, 2] = 1.0
    table[4:7, 3] = [0.1, 0.2, 0.3]
    save_file({"embeddings": table}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"hidden_dim": dim}))
    return folder
