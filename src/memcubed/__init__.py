"""memcubed: a memory operating system for LLM applications and agents.

    import memcubed
    with memcubed.open("memories.db") as mc:
        cube = mc.add("Alice prefers tea over coffee", tags=["prefs"])
        hits = mc.search("what does alice drink?").hits
"""

from memcubed import errors
from memcubed.cube import (
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
from memcubed.errors import (
    AccessDenied,
    AlreadyExists,
    BackendUnavailable,
    BudgetExceeded,
    Cancelled,
    ConfigurationError,
    Conflict,
    DependencyMissing,
    IntegrityError,
    MemcubedError,
    NotFound,
    StorageError,
    UnknownPrincipal,
    ValidationError,
    VersionConflict,
)
from memcubed.interfaces.api import Memcubed, open_store
from memcubed.kernel import Event, Kernel
from memcubed.settings import Settings

open = open_store

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AlreadyExists",
    "BackendUnavailable",
    "BlobRef",
    "BudgetExceeded",
    "Cancelled",
    "ConfigurationError",
    "Conflict",
    "CubeKind",
    "CubeState",
    "CubeStats",
    "DependencyMissing",
    "DerivedRef",
    "Event",
    "Grant",
    "IntegrityError",
    "Kernel",
    "MemCube",
    "Memcubed",
    "MemcubedError",
    "NotFound",
    "Right",
    "Settings",
    "Source",
    "StorageError",
    "UnknownPrincipal",
    "ValidationError",
    "VersionConflict",
    "errors",
    "open",
    "open_store",
]
