"""Settings of hybrid retrieval."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TextConfig"]


class TextConfig(BaseModel):
    """How lexical and vector results are fused.

    Attributes:
        candidates: results fetched from each signal before fusion.
        rrf_k: reciprocal-rank-fusion damping constant.
        lexical_weight: weight of the full-text (BM25) signal.
        vector_weight: weight of the embedding signal.
    """

    model_config = ConfigDict(extra="forbid")

    candidates: int = Field(default=100, ge=1, le=1000)
    rrf_k: float = Field(default=60.0, gt=0)
    lexical_weight: float = Field(default=1.0, ge=0)
    vector_weight: float = Field(default=1.0, ge=0)
