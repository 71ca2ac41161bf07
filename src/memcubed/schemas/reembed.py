"""Schemas of ``reembed``: moving a store's vectors to another embedder."""

from __future__ import annotations

from pydantic import BaseModel, Field

from memcubed.schemas.base import Input

__all__ = ["ReembedInput", "ReembedReport"]


class ReembedInput(Input):
    """Input of ``reembed``: the embedder to move the store to."""

    embedder: str = Field(min_length=1, max_length=1000, pattern=r"^[^\x00-\x1f]+$",
                          description="the new embedder's spec (as MEMCUBED_EMBEDDER takes it: local, static,"
                                      " static:<folder>, local:<name or folder>, openai:<model>); not none")
    batch: int = Field(default=256, ge=1, le=4096, description="cubes embedded per staged batch")


class ReembedReport(BaseModel):
    """How a re-embed ended: the store's embedder before and after, and how many cubes were re-embedded."""

    switched: bool = Field(description="false when the store already used that embedder (nothing changed)")
    previous: str = Field(description="the embedder before, as <spec>|<dim>")
    previous_fingerprint: str
    embedder: str = Field(description="the embedder now, as <spec>|<dim>")
    fingerprint: str
    dim: int
    cubes: int = Field(description="cubes whose vectors were switched")
    late: int = Field(description="of those, cubes added or edited while the job ran, embedded at the switch")
