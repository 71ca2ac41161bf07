"""Byte-stable safetensors: the one writer every tensor payload (KV segments, adapters) goes through."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["header_metadata", "save_sorted"]


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
