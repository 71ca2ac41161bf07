"""Settings of activation memory: how KV segments are rendered, stored and bounded."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["KVCacheConfig", "StorageDType"]

StorageDType = Literal["float32", "bfloat16", "float16"]


class KVCacheConfig(BaseModel):
    """How cube texts become KV segments.

    Attributes:
        storage_dtype: dtype of the stored tensors. ``float32`` reproduces the model's logits
            exactly; ``bfloat16`` halves the bytes at a small logit deviation (measured in the tests).
        separator: appended to each cube's text before it is tokenised, so cubes stay apart.
        max_segment_tokens: longest text one segment may hold.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    storage_dtype: StorageDType = "float32"
    separator: str = Field(default="\n\n", max_length=64)
    max_segment_tokens: int = Field(default=8192, ge=1)

    def format_id(self) -> str:
        """Return the canonical JSON of every setting that changes a segment's tensors (part of segment keys)."""
        return json.dumps({"storage_dtype": self.storage_dtype, "separator": self.separator},
                          sort_keys=True, separators=(",", ":"))
