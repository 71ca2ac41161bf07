"""One definition of every operation's input and output, shared by the Python API, CLI, REST and MCP.

``ops`` holds the plaintext and governance operations, ``chat`` generation with memory, ``jobs``
background work, ``server`` the shapes only the server speaks (keys, error bodies, pages, proxy).
"""

from memcubed.cube.model import BlobRef, CubeKind, CubeState, CubeStats, DerivedRef, Grant, MemCube, Right, Source
from memcubed.schemas.chat import ChatMessage, ChatRequest, ChatResult, GenerationResult
from memcubed.schemas.jobs import CacheJob, JobRecord, JobState, JobSubmit
from memcubed.schemas.ops import (
    AuditRecord,
    AuditReport,
    CubeCreate,
    CubeUpdate,
    HistoryEntry,
    PrincipalCreate,
    PrincipalPublic,
    SearchFilters,
    SearchHit,
    SearchMode,
    SearchRequest,
    SearchResult,
    ShareRequest,
    SignalScore,
)

__all__ = [
    "AuditRecord",
    "AuditReport",
    "BlobRef",
    "CacheJob",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "CubeCreate",
    "CubeKind",
    "CubeState",
    "CubeStats",
    "CubeUpdate",
    "DerivedRef",
    "GenerationResult",
    "Grant",
    "HistoryEntry",
    "JobRecord",
    "JobState",
    "JobSubmit",
    "MemCube",
    "PrincipalCreate",
    "PrincipalPublic",
    "Right",
    "SearchFilters",
    "SearchHit",
    "SearchMode",
    "SearchRequest",
    "SearchResult",
    "ShareRequest",
    "SignalScore",
    "Source",
]
