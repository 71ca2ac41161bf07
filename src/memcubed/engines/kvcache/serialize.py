"""KV segments as safetensors bytes: tensors ``ids``, ``k.{layer}``, ``v.{layer}`` plus string metadata.

Loading checks, in order: the header parses and names this format (else ``IntegrityError``), the
schema version is known (else ``IntegrityError``), the model fingerprint matches the running model
(else ``ConfigurationError``: a cache made for another model is an environment mismatch, like an
embedder that differs from the store's), and the tensors agree with the metadata (else
``IntegrityError``). Hash checks of the bytes themselves belong to the blob store.
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass, fields
from typing import Any

from memcubed.engines._tensorfile import check_header, import_loader
from memcubed.engines._tensorfile import save_sorted as _save_sorted
from memcubed.errors import DependencyMissing, IntegrityError

__all__ = ["FORMAT", "SCHEMA_VERSION", "KVSegment", "SegmentMeta", "dump_segment", "load_segment", "read_metadata"]

FORMAT = "memcubed.kvsegment"
SCHEMA_VERSION = 1
_DTYPES = {"float32", "bfloat16", "float16"}


@dataclass(frozen=True)
class SegmentMeta:
    """What a stored segment says about itself.

    Attributes:
        key: the prefix-tree key (``prefix.segment_key``) of this segment.
        parent: key of the segment right before it, or "" for the first one.
        fingerprint: the model fingerprint the tensors belong to.
        start: position of the segment's first token in the whole prefix.
        token_count: tokens in this segment.
        dtype: storage dtype of the tensors.
        cube_id: id of the cube the segment was computed from ("" for anonymous text).
        cube_version: its version (0 for anonymous text).
        text_sha256: sha256 of the cube's text as the segment reads it (``CubeText.link``: its rendered block).
        exact: False for segments meant for approximate, independently computed use.
    """

    key: str
    parent: str
    fingerprint: str
    start: int
    token_count: int
    dtype: str
    cube_id: str
    cube_version: int
    text_sha256: str
    exact: bool = True


@dataclass
class KVSegment:
    """One cube's slice of a KV-cache.

    Attributes:
        meta: identity and position of the slice.
        token_ids: the slice's token ids.
        layers: per-layer ``(keys, values)`` torch tensors shaped ``(1, kv_heads, token_count, head_dim)``.
    """

    meta: SegmentMeta
    token_ids: list[int]
    layers: list[tuple[Any, Any]]


def _version() -> str:
    try:
        return importlib.metadata.version("memcubed")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def dump_segment(segment: KVSegment) -> bytes:
    """Serialise a segment to safetensors bytes in ``segment.meta.dtype`` (deterministic for equal input).

    Raises:
        DependencyMissing: torch or safetensors is missing.
    """
    try:
        import torch
    except ImportError as exc:
        raise DependencyMissing("KV-caches need `pip install memcubed[local]` (torch, safetensors)") from exc
    dtype = getattr(torch, segment.meta.dtype)
    tensors: dict[str, Any] = {"ids": torch.tensor(segment.token_ids, dtype=torch.int64)}
    for i, (keys, values) in enumerate(segment.layers):
        tensors[f"k.{i}"] = keys[0].to(dtype).contiguous()
        tensors[f"v.{i}"] = values[0].to(dtype).contiguous()
    meta = {field.name: str(getattr(segment.meta, field.name)) for field in fields(SegmentMeta)}
    meta.update(format=FORMAT, schema_version=str(SCHEMA_VERSION), memcubed_version=_version(),
                layers=str(len(segment.layers)))
    return _save_sorted(tensors, meta)


def read_metadata(data: bytes) -> dict[str, str]:
    """Return the safetensors header's ``__metadata__`` without loading tensors.

    Raises:
        IntegrityError: the bytes are not a memcubed KV segment.
    """
    try:
        size = int.from_bytes(data[:8], "little")
        if size <= 0 or size > len(data) - 8:
            raise ValueError(f"header length {size} outside the {len(data)} bytes")
        header = json.loads(data[8 : 8 + size])
        meta = header["__metadata__"]
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError("not a memcubed KV segment")
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"malformed KV segment: {exc}") from exc
    return {str(k): str(v) for k, v in meta.items()}


def load_segment(data: bytes, *, fingerprint: str, dtype: Any = None) -> KVSegment:
    """Parse and check segment bytes; tensors are cast to ``dtype`` (the model's) when given.

    Args:
        data: bytes from ``dump_segment`` (normally fetched through the hash-checking blob store).
        fingerprint: the running model's fingerprint; the segment must have been made by it.
        dtype: torch dtype to cast keys and values to.

    Raises:
        IntegrityError: the bytes are malformed, of an unknown schema, or disagree with their metadata.
        ConfigurationError: the segment belongs to another model (``details`` has both fingerprints).
        DependencyMissing: torch or safetensors is missing.
    """
    meta = read_metadata(data)
    check_header(meta, schema_version=SCHEMA_VERSION, fingerprint=fingerprint, what="KV segment")
    torch, SafetensorError, load = import_loader("KV-caches")
    try:
        segment_meta = SegmentMeta(
            key=meta["key"], parent=meta["parent"], fingerprint=meta["fingerprint"], start=int(meta["start"]),
            token_count=int(meta["token_count"]), dtype=meta["dtype"], cube_id=meta["cube_id"],
            cube_version=int(meta["cube_version"]), text_sha256=meta["text_sha256"], exact=meta["exact"] == "True")
        n_layers = int(meta["layers"])
        tensors = load(data)
        ids = tensors["ids"].tolist()
        layers = [(tensors[f"k.{i}"].unsqueeze(0), tensors[f"v.{i}"].unsqueeze(0)) for i in range(n_layers)]
    except (KeyError, ValueError, SafetensorError) as exc:
        raise IntegrityError(f"malformed KV segment: {exc}") from exc
    expected_dtype = getattr(torch, segment_meta.dtype, None) if segment_meta.dtype in _DTYPES else None
    problems = [] if len(ids) == segment_meta.token_count and n_layers > 0 and len(tensors) == 2 * n_layers + 1 \
        else ["tensor count or token ids disagree with the metadata"]
    for keys, values in layers:
        if keys.shape != values.shape or keys.shape[2] != segment_meta.token_count or keys.dtype != expected_dtype:
            problems.append(f"layer tensors {tuple(keys.shape)}/{keys.dtype} disagree with the metadata")
            break
    if problems:
        raise IntegrityError(f"inconsistent KV segment {segment_meta.key}: {problems[0]}", key=segment_meta.key)
    if dtype is not None:
        layers = [(keys.to(dtype), values.to(dtype)) for keys, values in layers]
    return KVSegment(meta=segment_meta, token_ids=ids, layers=layers)
