"""A static embedder (model2vec format): one vector per vocabulary token, a text's vector is their mean.

Embedding a query is a tokenizer call and a numpy mean: well under a millisecond on one core, with no
torch at query time. ``static`` distils one from the packaged all-MiniLM-L6-v2 on first use (every
vocabulary token through the model once, PCA, Zipf weighting, as model2vec does) and caches it under
memcubed's user cache folder; ``static:<folder>`` loads any model2vec folder (``model.safetensors``
with an ``embeddings`` tensor, ``tokenizer.json``), e.g. a potion model a user downloaded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from memcubed.backends.embedders.fingerprint import files_fingerprint, text_fingerprint
from memcubed.errors import BackendUnavailable, DependencyMissing

__all__ = ["StaticEmbedder", "distillation_fingerprint", "distilled_minilm_path"]

_DIM = 256  # PCA target: model2vec's default, and what keeps the table at ~30 MB
_SIF = 1e-4  # the smooth-inverse-frequency coefficient of the Zipf weighting
_RECIPE = "model2vec-mean-pca-zipf/1"  # bump when distil() changes what it writes
_FILES = ("model.safetensors", "tokenizer.json")


class StaticEmbedder:
    """Sentence vectors as the mean of per-token static vectors, L2-normalised.

    Args:
        folder: a model2vec folder; the distilled packaged MiniLM when None.
        max_tokens: tokens kept per text (a static model has no window, but very long texts are capped).
        window_tokens: chunk long memories by this window; 0 (the default) does not, because the mean over
            ``max_tokens`` already sees every part of a text (measured on LongMemEval-S dev: windows did not
            help this model, see bench/embedders.py).
    """

    def __init__(self, folder: str | Path | None = None, *, max_tokens: int = 4096, window_tokens: int = 0) -> None:
        self._folder = Path(folder) if folder is not None else None
        self.name = "static" if folder is None else f"static:{folder}"
        self.max_tokens = max_tokens
        self.window_tokens = window_tokens
        self._lock = threading.Lock()
        self._table: npt.NDArray[np.float32] | None = None
        self._tokenizer: Any = None
        self.dim = self._read_dim()

    @cached_property
    def fingerprint(self) -> str:
        """The table's fingerprint: the distillation recipe and its source's weights for ``static`` (known
        before distilling), the folder's files for ``static:<folder>``.

        Raises:
            BackendUnavailable: a model file cannot be read.
            DependencyMissing: ``static`` needs the packaged MiniLM, which is not installed.
        """
        limit = f"max_tokens={self.max_tokens}"
        if self._folder is None:
            return text_fingerprint(distillation_fingerprint(), limit)
        return files_fingerprint(self._folder, _FILES, limit)

    def _resolved(self) -> Path:
        return self._folder if self._folder is not None else distilled_minilm_path()

    def _read_dim(self) -> int:
        if self._folder is None:
            return _DIM
        config = self._folder / "config.json"
        try:
            dim = json.loads(config.read_text()).get("hidden_dim") if config.is_file() else None
            if dim is None:
                self._load()
                assert self._table is not None
                return int(self._table.shape[1])
            return int(dim)
        except (OSError, ValueError) as exc:
            raise BackendUnavailable(f"cannot read static embedding model {self._folder}: {exc}") from exc

    def _load(self) -> None:
        """Read the token table and tokenizer on first use (idempotent)."""
        if self._table is not None:
            return
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise DependencyMissing("static embeddings need `pip install memcubed[local]` (tokenizers, "
                                    "safetensors)") from exc
        folder = self._resolved()
        try:
            table = load_file(str(folder / "model.safetensors"))["embeddings"]
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except (OSError, KeyError, ValueError, Exception) as exc:  # tokenizers raises plain Exception
            raise BackendUnavailable(f"cannot load static embedding model {folder}: {exc}") from exc
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._tokenizer = tokenizer
        self._table = np.ascontiguousarray(table, dtype=np.float32)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Return one L2-normalised float32 row per text (a text with no known token gets a zero row)."""
        with self._lock:
            self._load()
        assert self._table is not None
        out = np.zeros((len(texts), self._table.shape[1]), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        for row, enc in enumerate(encodings):
            ids = enc.ids[: self.max_tokens]
            if ids:
                out[row] = self._table[ids].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        normalised: npt.NDArray[np.float32] = out / np.maximum(norms, 1e-12)
        return normalised


def distillation_fingerprint() -> str:
    """The fingerprint of the static model ``static`` distils: the recipe and the packaged MiniLM's files.

    Raises:
        DependencyMissing: the packaged MiniLM is not installed.
    """
    from memcubed.backends.embedders.local import WEIGHT_FILES, packaged_minilm_path

    return text_fingerprint(_RECIPE, f"dim={_DIM}", f"sif={_SIF}",
                            files_fingerprint(packaged_minilm_path(), WEIGHT_FILES))


def distilled_minilm_path() -> Path:
    """Return the folder of the static model distilled from the packaged MiniLM, distilling it on first use.

    The folder is keyed by :func:`distillation_fingerprint` (the recipe and the packaged weights' content);
    concurrent first uses are safe (each distils into a private folder, the first rename wins).

    Raises:
        DependencyMissing: the packaged MiniLM or torch/transformers are not installed.
    """
    from memcubed.backends.embedders.local import packaged_minilm_path
    from memcubed.backends.models.packaged import build_cache_folder, cache_root

    source = packaged_minilm_path()
    target = cache_root() / "static" / f"minilm-{distillation_fingerprint().removeprefix('sha256:')[:16]}-{_DIM}"
    if not _distilled(target):
        build_cache_folder(target, lambda work: distil(source, work, dim=_DIM), ready=_distilled, prefix=".distil-")
    return target


def _distilled(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file()


def distil(source: Path, target: Path, *, dim: int = _DIM, batch_size: int = 512) -> None:
    """Write a model2vec folder distilled from the transformers encoder in ``source`` into ``target``.

    Each vocabulary token is embedded alone (with the model's special tokens, mean-pooled), the table
    is reduced to ``dim`` components by PCA and weighted by smooth inverse frequency under a Zipf
    assumption on the token ids (model2vec's recipe; frequent tokens count less).

    Raises:
        DependencyMissing: torch or transformers are not installed.
    """
    try:
        import torch
        from safetensors.numpy import save_file
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise DependencyMissing("distilling a static embedder needs `pip install memcubed[local]`") from exc
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    model = AutoModel.from_pretrained(str(source)).eval()
    vocab_size = len(tokenizer)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    rows: list[npt.NDArray[np.float32]] = []
    with torch.inference_mode():
        for start in range(0, vocab_size, batch_size):
            ids = torch.arange(start, min(start + batch_size, vocab_size)).unsqueeze(1)
            parts = [ids]
            if cls is not None:
                parts.insert(0, torch.full_like(ids, cls))
            if sep is not None:
                parts.append(torch.full_like(ids, sep))
            hidden = model(input_ids=torch.cat(parts, dim=1)).last_hidden_state
            rows.append(hidden.mean(dim=1).numpy().astype(np.float32))
    table = np.concatenate(rows)
    centred = table - table.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ components[: min(dim, components.shape[0])].T
    ranks = np.arange(1, vocab_size + 1, dtype=np.float64)
    probability = (1 / ranks) / (1 / ranks).sum()
    weighted = reduced * (_SIF / (_SIF + probability))[:, None]
    target.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": weighted.astype(np.float32)}, str(target / "model.safetensors"))
    tokenizer.backend_tokenizer.save(str(target / "tokenizer.json"))
    (target / "config.json").write_text(json.dumps({
        "model_type": "model2vec", "hidden_dim": int(weighted.shape[1]), "normalize": True,
        "distilled_from": str(source), "pca_dims": dim, "sif_coefficient": _SIF}, indent=1))
