"""Schemas of the working set: per (principal, namespace), hot memories kept as one exact KV prefix that
``chat`` puts first, before each question's extra hits."""

from __future__ import annotations

from pydantic import BaseModel, Field

from memcubed.cube.model import MemCube
from memcubed.schemas.base import CubeId, Input, Name

__all__ = ["WorkingSet", "WorkingSetInput", "WorkingSetRef"]


class WorkingSetRef(Input):
    """Input of ``working_set`` and ``clear_working_set``: the acting principal's working set of a namespace."""

    namespace: Name = Field(default="default", description="memory space")


class WorkingSetInput(WorkingSetRef):
    """Input of ``set_working_set``: which memories (all readable, active plaintext of ``namespace``), for which model.

    Without ``cube_ids`` the default selection picks them: the scheduler's choice of the namespace's readable
    memories the principal read most (its usage signals) under the token and cube budgets
    (``working_set_max_tokens``/``_max_cubes``).
    """

    cube_ids: list[CubeId] | None = Field(default=None, min_length=1, max_length=1000,
                                          description="the members; omitted: the hottest memories under budget")
    model: str | None = Field(default=None, max_length=64, description="a model id the operator configured "
                              "(MEMCUBED_MODELS); the default model when omitted")


class WorkingSet(BaseModel):
    """A principal's working set of one namespace (``cube`` is None when there is none).

    ``members`` are in canonical order, the order of the prefix. ``usable`` says whether chat would serve
    it now: a member changed, deleted, forgotten or no longer readable makes it unusable (never served
    stale; ``reason`` says why, and ``set_working_set`` compiles a fresh one).
    """

    namespace: str
    principal: str
    cube: MemCube | None = None
    members: list[str] = Field(default_factory=list)
    tokens: int = 0
    usable: bool = False
    reason: str | None = None
