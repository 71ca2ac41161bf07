"""Adapters as safetensors bytes: the LoRA tensors under their peft names, plus string metadata.

Metadata: ``format`` (``memcubed.lora``), ``schema_version``, ``memcubed_version``, ``peft_version``,
``fingerprint`` (the base model the adapter was trained on) and ``config`` (the ``LoRAConfig`` as
canonical JSON). Loading checks, in order: the header parses and names this format, the schema is
known (else ``IntegrityError``), the base model matches (else ``ConfigurationError``, like a KV
segment of another model), and the tensors are finite fp32 matrices (else ``IntegrityError``).
The bytes are deterministic for equal tensors, so equal adapters share one content-addressed blob.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from memcubed.engines._tensorfile import check_header, header_metadata, import_loader, save_sorted
from memcubed.engines.lora.config import LoRAConfig
from memcubed.errors import IntegrityError

__all__ = ["FORMAT", "SCHEMA_VERSION", "Adapter", "dump_adapter", "load_adapter"]

FORMAT = "memcubed.lora"
SCHEMA_VERSION = 1


@dataclass
class Adapter:
    """A LoRA adapter in memory.

    Attributes:
        fingerprint: the base model it belongs to.
        config: the shape and schedule it was trained with.
        state: tensors by peft state-dict name.
    """

    fingerprint: str
    config: LoRAConfig
    state: dict[str, Any]

    @property
    def parameters(self) -> int:
        """Number of trainable numbers in the adapter."""
        return sum(int(t.numel()) for t in self.state.values())


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:  # a source tree that is not installed
        return "0+unknown"


def dump_adapter(adapter: Adapter) -> bytes:
    """Serialise an adapter to byte-stable safetensors (fp32)."""
    import torch

    tensors = {name: tensor.to(torch.float32).contiguous() for name, tensor in adapter.state.items()}
    meta = {"format": FORMAT, "schema_version": str(SCHEMA_VERSION), "memcubed_version": _version("memcubed"),
            "peft_version": _version("peft"), "fingerprint": adapter.fingerprint, "config": adapter.config.canonical()}
    return save_sorted(tensors, meta)


def load_adapter(data: bytes, *, fingerprint: str) -> Adapter:
    """Parse and check adapter bytes for the running base model.

    Raises:
        IntegrityError: the bytes are malformed, of an unknown schema, or hold non-finite or non-matrix tensors.
        ConfigurationError: the adapter was trained on another base model (``details`` has both fingerprints).
        DependencyMissing: torch or safetensors is missing.
    """
    try:
        meta = header_metadata(data)
        if meta.get("format") != FORMAT:
            raise ValueError("not a memcubed LoRA adapter")
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"malformed adapter: {exc}") from exc
    check_header(meta, schema_version=SCHEMA_VERSION, fingerprint=fingerprint, what="adapter")
    torch, SafetensorError, load = import_loader("adapters")
    try:
        config = LoRAConfig.model_validate_json(meta["config"])
        state = load(data)
    except (KeyError, ValueError, PydanticValidationError, SafetensorError) as exc:
        raise IntegrityError(f"malformed adapter: {exc}") from exc
    for name, tensor in state.items():
        if tensor.dtype != torch.float32 or tensor.ndim != 2 or not bool(torch.isfinite(tensor).all()):
            raise IntegrityError(f"adapter tensor {name} is not a finite fp32 matrix", tensor=name)
    if not state:
        raise IntegrityError("adapter holds no tensors")
    return Adapter(fingerprint=fingerprint, config=config, state=state)
