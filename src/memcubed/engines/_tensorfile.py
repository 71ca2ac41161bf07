"""Byte-stable safetensors: the one writer every tensor payload (KV segments, adapters) goes through."""

from __future__ import annotations

import json
from typing import Any

from memcubed.errors import ConfigurationError, DependencyMissing, IntegrityError

__all__ = ["check_header", "header_metadata", "import_loader", "save_sorted"]


def save_sorted(tensors: dict[str, Any], metadata: dict[str, str]) -> bytes:
    """Write the safetensors format with sorted keys.

    ``safetensors.torch.save`` keeps the metadata in a hash map, so equal payloads would get
    different bytes, and so different blob digests; content addressing needs byte-stable output.
    """
    import torch

    codes = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64"}
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous()
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": codes[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    encoded = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format pads the header to 8-byte alignment
    return len(encoded).to_bytes(8, "little") + encoded + b"".join(chunks)


def header_metadata(data: bytes) -> dict[str, str]:
    """Return a safetensors file's ``__metadata__`` without reading its tensors.

    Raises:
        ValueError: the bytes do not start with a well-formed safetensors header.
    """
    size = int.from_bytes(data[:8], "little")
    if size <= 0 or size > len(data) - 8:
        raise ValueError(f"header length {size} outside the {len(data)} bytes")
    header = json.loads(data[8 : 8 + size])
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        raise ValueError("no metadata in the safetensors header")
    return {str(k): str(v) for k, v in meta.items()}


def check_header(meta: dict[str, str], *, schema_version: int, fingerprint: str, what: str) -> None:
    """Refuse a payload of another schema or computed by another model, before reading its tensors.

    Raises:
        IntegrityError: an unknown ``schema_version``.
        ConfigurationError: the payload belongs to another model (``details`` has both fingerprints).
    """
    if meta.get("schema_version") != str(schema_version):
        raise IntegrityError(f"unsupported {what} schema {meta.get('schema_version')!r}",
                             schema_version=meta.get("schema_version"))
    if meta.get("fingerprint") != fingerprint:
        raise ConfigurationError(f"the {what} belongs to another model", field="model",
                                 expected=fingerprint, actual=meta.get("fingerprint"))


def import_loader(what: str) -> tuple[Any, Any, Any]:
    """Return ``(torch, SafetensorError, safetensors.torch.load)``.

    Raises:
        DependencyMissing: torch or safetensors is not installed.
    """
    try:
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load
    except ImportError as exc:
        raise DependencyMissing(f"{what} need `pip install memcubed[local]` (torch, safetensors)") from exc
    return torch, SafetensorError, load
