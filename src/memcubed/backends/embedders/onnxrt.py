"""The local encoder through onnxruntime: the same weights, exported once to ONNX, embed a query in a few
milliseconds on two cores with half torch's CPU time.

On first use the transformers folder is exported (``torch.onnx``, mean pooling and L2 normalisation inside
the graph) into memcubed's user cache folder, keyed by the embedder's fingerprint (its weights' content and
``max_length``) and this export recipe, so changed weights get a new export. The export is accepted only
when it gives torch's vectors (cosine ≥ 1 - 1e-5 on padded and truncated probe batches), so stored
vectors stay valid and the fingerprint stays the same. A sidecar digest detects a damaged file, which is
exported again. Without onnxruntime (or ``onnx`` for the export) the embedder keeps using torch.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from memcubed.backends.embedders.fingerprint import file_digest, text_fingerprint
from memcubed.errors import BackendUnavailable, DependencyMissing

__all__ = ["INPUTS", "OnnxEncoder", "digest_intact", "export", "exported_path", "load_encoder",
           "onnxruntime_available"]

_RECIPE = "onnx-meanpool-l2-opset17/1"  # bump when export() changes what it writes
_MODEL = "model.onnx"
_DIGEST = "model.onnx.sha256"
_MIN_COSINE = 1 - 1e-5
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
"""The graph's inputs, in the order the export traces them."""

_PROBES = ("What did Caroline research after the support group?", "hi",
           "Melanie ran a charity race for mental health on the Saturday before 25 May 2023. " * 40,
           "Ünïcødé — 東京 🙂 tabs\tand\nnewlines", "")


def onnxruntime_available() -> bool:
    """Whether onnxruntime can be imported (without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def exported_path(fingerprint: str) -> Path:
    """The cache folder of the ONNX export of the encoder with ``fingerprint``."""
    from memcubed.backends.models.packaged import cache_root

    key = text_fingerprint(_RECIPE, fingerprint).removeprefix("sha256:")[:24]
    return cache_root() / "onnx" / f"encoder-{key}"


class OnnxEncoder:
    """An onnxruntime session over an exported encoder: token arrays in, L2-normalised float32 rows out.

    Args:
        path: the ``model.onnx`` file.
        threads: intra-op threads (at most two: one query gains little beyond, and a shared host loses).
    """

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise DependencyMissing("the ONNX query path needs `pip install memcubed[onnx]`") from exc
        self.path = path
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # A spinning pool doubles the CPU per query and, on a loaded host, the latency too (measured).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types, not OSError
            raise BackendUnavailable(f"cannot load ONNX encoder {path}: {exc}") from exc

    def encode(self, tokens: dict[str, Any]) -> npt.NDArray[np.float32]:
        """Run one padded batch (numpy arrays keyed by :data:`INPUTS`)."""
        feed = {name: np.asarray(tokens[name], dtype=np.int64) for name in INPUTS}
        out: npt.NDArray[np.float32] = np.asarray(self._session.run(None, feed)[0], dtype=np.float32)
        return out


def load_encoder(source: str, fingerprint: str, *, max_length: int) -> OnnxEncoder:
    """The encoder of ``source`` through onnxruntime, exporting (or re-exporting a damaged file) first.

    Raises:
        DependencyMissing: onnxruntime is absent, or an export is needed and torch or onnx is absent.
        BackendUnavailable: the export failed or does not give torch's vectors.
    """
    from memcubed.backends.models.packaged import build_cache_folder

    if not onnxruntime_available():
        raise DependencyMissing("the ONNX query path needs `pip install memcubed[onnx]` (onnxruntime)")
    folder = exported_path(fingerprint)
    if _intact(folder):
        try:
            return OnnxEncoder(folder / _MODEL)
        except BackendUnavailable:
            pass  # a file that matches its digest but does not load: export it again
    shutil.rmtree(folder, ignore_errors=True)
    build_cache_folder(folder, lambda work: export(source, work, max_length=max_length), ready=_intact,
                       prefix=".export-")
    return OnnxEncoder(folder / _MODEL)


def _intact(folder: Path) -> bool:
    """Whether ``folder`` holds an export whose bytes match the digest written with it."""
    return digest_intact(folder, _MODEL, _DIGEST)


def digest_intact(folder: Path, model_name: str, digest_name: str) -> bool:
    """Whether ``folder / model_name`` exists and its bytes match the sha256 hex in ``folder / digest_name``."""
    model, digest = folder / model_name, folder / digest_name
    if not (model.is_file() and digest.is_file()):
        return False
    try:
        return digest.read_text().strip() == file_digest(model)
    except (OSError, BackendUnavailable):
        return False


def export(source: str, target: Path, *, max_length: int) -> None:
    """Export the transformers encoder in ``source`` to ``target/model.onnx`` with its digest, after checking
    that onnxruntime gives torch's vectors on the probe batches.

    Raises:
        DependencyMissing: torch, transformers, onnx or onnxruntime is not installed.
        BackendUnavailable: the export failed or its vectors differ from torch's.
    """
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise DependencyMissing("exporting the encoder needs `pip install memcubed[local]`") from exc
    if importlib.util.find_spec("onnx") is None:
        raise DependencyMissing("exporting the encoder to ONNX needs `pip install memcubed[onnx]` (onnx)")
    tokenizer = AutoTokenizer.from_pretrained(source)
    # Eager attention: the traced graph must not depend on whether the sample batch had padding.
    model = _pooled(AutoModel.from_pretrained(source, attn_implementation="eager").eval())
    sample = tokenizer(list(_PROBES), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    if any(name not in sample for name in INPUTS):
        raise BackendUnavailable(f"the tokenizer of {source} gives no {INPUTS}; keeping torch")
    target.mkdir(parents=True, exist_ok=True)
    path = target / _MODEL
    dynamic = {name: {0: "batch", 1: "tokens"} for name in INPUTS} | {"vector": {0: "batch"}}
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, tuple(sample[name] for name in INPUTS), str(path), input_names=list(INPUTS),
                              output_names=["vector"], dynamic_axes=dynamic, opset_version=17, dynamo=False)
            expected = [model(*(enc[name] for name in INPUTS)).numpy() for enc in _probe_batches(tokenizer, max_length)]
    except Exception as exc:  # the exporter raises many types; any of them means no usable export
        raise BackendUnavailable(f"cannot export {source} to ONNX: {exc}") from exc
    encoder = OnnxEncoder(path)
    for enc, torch_rows in zip(_probe_batches(tokenizer, max_length, tensors="np"), expected, strict=True):
        cosine = (encoder.encode(enc) * torch_rows).sum(axis=1)
        if cosine.min() < _MIN_COSINE:
            raise BackendUnavailable(f"the ONNX export of {source} does not give torch's vectors "
                                     f"(cosine {cosine.min():.7f}); keeping torch")
    (target / _DIGEST).write_text(file_digest(path))


def _probe_batches(tokenizer: Any, max_length: int, tensors: str = "pt") -> list[Any]:
    """A padded batch, each probe alone, and a truncated one: every shape the graph must handle."""
    texts = [list(_PROBES), *([p] for p in _PROBES)]
    return [tokenizer(t, padding=True, truncation=True, max_length=max_length, return_tensors=tensors) for t in texts]


def _pooled_module() -> Any:
    import torch

    class Pooled(torch.nn.Module):
        """The encoder with mean pooling over real tokens and L2 normalisation, as the torch path does."""

        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    return Pooled


def _pooled(encoder: Any) -> Any:
    return _pooled_module()(encoder).eval()  # a new module trains by default, and export restores that mode
