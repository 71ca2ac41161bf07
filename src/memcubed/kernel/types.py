"""The types kernel operations take, named here for interfaces (which never import backends or engines)."""

from __future__ import annotations

from memcubed.backends.base import Embedder, Vector
from memcubed.backends.models.base import KVLanguageModel, LanguageModel
from memcubed.engines.kvcache import Mode, StorageDType
from memcubed.engines.lora import LoRAConfig
from memcubed.kernel.parameter import ShouldCancel

__all__ = ["Embedder", "KVLanguageModel", "LanguageModel", "LoRAConfig", "Mode", "ShouldCancel", "StorageDType",
           "Vector"]
