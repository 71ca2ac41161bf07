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
    AdapterInactive,
    AlreadyExists,
    AttemptsExhausted,
    AuthenticationFailed,
    BackendUnavailable,
    BudgetExceeded,
    Cancelled,
    ClientClosed,
    ConfigurationError,
    Conflict,
    CorruptBundle,
    DependencyMissing,
    IntegrityError,
    LeaseLost,
    MalformedPlan,
    MemcubedError,
    ModelUnavailable,
    NotFound,
    RateLimited,
    StorageError,
    StoreNotFound,
    UnknownPrincipal,
    UpstreamError,
    UpstreamTimeout,
    ValidationError,
    VersionConflict,
)
from memcubed.interfaces.api import Memcubed, migrate_store, open_store
from memcubed.kernel import Event, Kernel
from memcubed.schemas.jobs import JobRecord, JobState
from memcubed.settings import Settings

open = open_store
migrate = migrate_store

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AdapterInactive",
    "AlreadyExists",
    "AttemptsExhausted",
    "AuthenticationFailed",
    "BackendUnavailable",
    "BlobRef",
    "BudgetExceeded",
    "Cancelled",
    "ClientClosed",
    "ConfigurationError",
    "Conflict",
    "CorruptBundle",
    "CubeKind",
    "CubeState",
    "CubeStats",
    "DependencyMissing",
    "DerivedRef",
    "Event",
    "Grant",
    "IntegrityError",
    "JobRecord",
    "JobState",
    "Kernel",
    "LeaseLost",
    "MalformedPlan",
    "MemCube",
    "Memcubed",
    "MemcubedError",
    "ModelUnavailable",
    "NotFound",
    "RateLimited",
    "Right",
    "Settings",
    "Source",
    "StorageError",
    "StoreNotFound",
    "UnknownPrincipal",
    "UpstreamError",
    "UpstreamTimeout",
    "ValidationError",
    "VersionConflict",
    "errors",
    "migrate",
    "migrate_store",
    "open",
    "open_store",
]
