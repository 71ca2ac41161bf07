"""The one exception hierarchy of memcubed.

Every error an entry point raises is a ``MemcubedError`` with a stable,
machine-readable ``code``; interfaces map codes to HTTP status, exit codes or
MCP errors in one table each.

    MemcubedError
    ├── ValidationError          bad input: empty/oversized text, malformed id, range, unknown field
    │   └── MalformedPlan        a model's proposed plan is not valid JSON or not a valid plan
    ├── NotFound                 no such cube, version, principal or blob
    │   ├── UnknownPrincipal     the acting principal is not registered
    │   └── StoreNotFound        the store named does not exist and was not to be created
    ├── AuthenticationFailed     an API key is missing, malformed, unknown or revoked, or its principal is disabled
    ├── AccessDenied             the principal lacks the right for the operation
    ├── Conflict                 the state changed under the caller
    │   ├── VersionConflict      ``expected_version`` did not match the current version
    │   ├── AlreadyExists        an id or name is already taken
    │   ├── LeaseLost            a job's worker no longer holds its lease; its output is discarded
    │   ├── AttemptsExhausted    a job failed (or lost its worker) on every attempt it was allowed
    │   └── AdapterInactive      a parameter cube's adapter failed its gate and is never served
    ├── BudgetExceeded           a configured budget (bytes, slots, size, quota) would be exceeded
    │   └── RateLimited          the principal sent more requests than its rate allows; retry later
    ├── Cancelled                long work stopped on request; nothing it was writing was kept
    ├── ConfigurationError       settings or environment cannot work
    │   ├── ClientClosed         a closed client (or kernel) was used again
    │   ├── DependencyMissing    an optional package or SQLite capability is missing
    │   └── ModelUnavailable     a tensor cube belongs to a model this store does not have (an imported bundle)
    ├── IntegrityError           stored data failed a hash or consistency check
    │   └── CorruptBundle        a bundle file's entries fail their hash, size or consistency check
    ├── UpstreamError            the proxy's upstream model server refused or failed the request
    │   └── UpstreamTimeout      the upstream did not answer within upstream_timeout_s
    └── StorageError             the backend failed
        └── BackendUnavailable   the backend (database, embedder, model server) cannot be reached
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccessDenied",
    "AdapterInactive",
    "AlreadyExists",
    "AttemptsExhausted",
    "AuthenticationFailed",
    "BackendUnavailable",
    "BudgetExceeded",
    "Cancelled",
    "ClientClosed",
    "ConfigurationError",
    "Conflict",
    "CorruptBundle",
    "DependencyMissing",
    "IntegrityError",
    "LeaseLost",
    "MalformedPlan",
    "MemcubedError",
    "ModelUnavailable",
    "NotFound",
    "RateLimited",
    "StorageError",
    "StoreNotFound",
    "UnknownPrincipal",
    "UpstreamError",
    "UpstreamTimeout",
    "ValidationError",
    "VersionConflict",
]


class MemcubedError(Exception):
    """Root of every error memcubed raises.

    Attributes:
        code: stable machine-readable identifier of the error class.
        message: human-readable explanation.
        details: structured context (field names, ids, versions).
    """

    code = "memcubed_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able body ``{"code", "message", "details"}``."""
        return {"code": self.code, "message": self.message, "details": self.details}


class ValidationError(MemcubedError):
    """Raised when input is malformed: empty or oversized text, bad id, out-of-range value, unknown field."""

    code = "validation_error"


class MalformedPlan(ValidationError):
    """Raised when a language model's proposed plan holds no JSON object, truncated or malformed JSON, or
    JSON that is not a valid plan; ``details["reason"]`` says which."""

    code = "malformed_plan"


class NotFound(MemcubedError):
    """Raised when a cube, version, principal or blob does not exist (or is deleted)."""

    code = "not_found"


class UnknownPrincipal(NotFound):
    """Raised when the acting principal is not registered in the store."""

    code = "unknown_principal"


class StoreNotFound(NotFound):
    """Raised when a store is opened without ``create`` and does not exist (a mistyped ``--db``, say),
    or when a SQLite store's folder does not exist (it is never created implicitly)."""

    code = "store_not_found"


class AuthenticationFailed(MemcubedError):
    """Raised when a caller cannot be identified: an API key is missing, malformed, unknown or revoked,
    or it belongs to a disabled principal."""

    code = "authentication_failed"


class AccessDenied(MemcubedError):
    """Raised when the acting principal lacks the right the operation needs."""

    code = "access_denied"


class Conflict(MemcubedError):
    """Raised when the stored state changed under the caller."""

    code = "conflict"


class VersionConflict(Conflict):
    """Raised when an update's ``expected_version`` differs from the cube's current version."""

    code = "version_conflict"


class AlreadyExists(Conflict):
    """Raised when creating something whose id or name is already taken."""

    code = "already_exists"


class LeaseLost(Conflict):
    """Raised when a job's worker no longer holds its lease (it expired and another worker claimed the job, or
    the worker is stopping): what it was writing is not committed, and the job's other holder finishes it."""

    code = "lease_lost"


class AttemptsExhausted(Conflict):
    """Raised when a job ran ``settings.job_max_attempts`` times without finishing (recorded as the job's error):
    each attempt's worker died (its lease expired) or failed with a transient error; ``details`` carry the
    attempts and the last error."""

    code = "attempts_exhausted"


class AdapterInactive(Conflict):
    """Raised when an inactive parameter cube (its adapter failed the consolidation gate) is asked to serve;
    its evaluation stays on the cube (``meta["gate"]``, ``meta["evaluation"]``)."""

    code = "adapter_inactive"


class BudgetExceeded(MemcubedError):
    """Raised when an operation would exceed a configured budget: a request body, ``meta`` or tag size, a batch,
    a page or ``k``, a per-principal quota (cubes, stored bytes) or adapter slots."""

    code = "budget_exceeded"


class RateLimited(BudgetExceeded):
    """Raised when a principal sends requests faster than the server's rate limit allows;
    ``details["retry_after_s"]`` says when the next one will be accepted."""

    code = "rate_limited"


class Cancelled(MemcubedError):
    """Raised when long work stops because its cancellation was requested; nothing it was writing is kept."""

    code = "cancelled"


class ConfigurationError(MemcubedError):
    """Raised when settings or the environment cannot work (e.g. embedder mismatch with the store)."""

    code = "configuration_error"


class ClientClosed(ConfigurationError):
    """Raised when a client or kernel is used after ``close()``: closing is final."""

    code = "client_closed"


class DependencyMissing(ConfigurationError):
    """Raised when an optional package or a SQLite capability is missing; the message says what to install."""

    code = "dependency_missing"


class ModelUnavailable(ConfigurationError):
    """Raised when an activation or parameter cube is used with a model other than the one it belongs to, e.g.
    a tensor cube imported from a bundle whose model this store does not have; it works once that model is
    configured here (``details`` has both fingerprints)."""

    code = "model_unavailable"


class IntegrityError(MemcubedError):
    """Raised when stored data fails a hash or consistency check (a tampered blob, a broken migration)."""

    code = "integrity_error"


class CorruptBundle(IntegrityError):
    """Raised when a bundle given to ``import_bundle`` contradicts itself: an entry fails its hash or size check
    against the manifest, is damaged, missing or unlisted, or a cube references sources or blobs the bundle
    lacks. The caller's file is at fault, not the store (so REST answers 422, not 500)."""

    code = "corrupt_bundle"


class UpstreamError(MemcubedError):
    """Raised when the chat proxy's upstream answers with an error status (``details["status"]``); a 4xx
    is the request's fault and keeps its status over REST, a 5xx becomes 502. The upstream's own body is
    never passed on (it may name the operator's account or key)."""

    code = "upstream_error"


class UpstreamTimeout(UpstreamError):
    """Raised when the chat proxy's upstream does not answer (or stops streaming) within ``upstream_timeout_s``."""

    code = "upstream_timeout"


class StorageError(MemcubedError):
    """Raised when the storage backend fails for a reason other than the caller's input."""

    code = "storage_error"


class BackendUnavailable(StorageError):
    """Raised when a backend (database, embedding service, model server) cannot be reached."""

    code = "backend_unavailable"
