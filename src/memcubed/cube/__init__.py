"""MemCube: the container of every memory, and its identifiers."""

from memcubed.cube.ids import new_cube_id, parse_cube_id
from memcubed.cube.model import (
    BlobRef,
    CubeKind,
    CubeState,
    CubeStats,
    DerivedRef,
    Grant,
    MemCube,
    Right,
    Source,
)

__all__ = [
    "BlobRef",
    "CubeKind",
    "CubeState",
    "CubeStats",
    "DerivedRef",
    "Grant",
    "MemCube",
    "Right",
    "Source",
    "new_cube_id",
    "parse_cube_id",
]
