"""The CLI's one table from error class to exit code (BSD sysexits)."""

from __future__ import annotations

from memcubed import errors

__all__ = ["exit_code"]

_EXIT_CODES: list[tuple[type[errors.MemcubedError], int]] = [
    (errors.ValidationError, 65),  # EX_DATAERR
    (errors.CorruptBundle, 65),  # EX_DATAERR: the file given is at fault
    (errors.UnknownPrincipal, 77),  # EX_NOPERM
    (errors.NotFound, 66),  # EX_NOINPUT
    (errors.AuthenticationFailed, 77),  # EX_NOPERM
    (errors.AccessDenied, 77),  # EX_NOPERM
    (errors.Conflict, 75),  # EX_TEMPFAIL: retry after re-reading
    (errors.RateLimited, 75),  # EX_TEMPFAIL: retry later
    (errors.BudgetExceeded, 73),  # EX_CANTCREAT
    (errors.Cancelled, 75),  # EX_TEMPFAIL: stopped on request, may be re-run
    (errors.ConfigurationError, 78),  # EX_CONFIG
    (errors.BackendUnavailable, 69),  # EX_UNAVAILABLE
    (errors.IntegrityError, 70),  # EX_SOFTWARE
    (errors.UpstreamError, 69),  # EX_UNAVAILABLE
    (errors.StorageError, 74),  # EX_IOERR
]


def exit_code(exc: errors.MemcubedError) -> int:
    """Return the exit code for ``exc`` (most specific class first); 1 for anything else."""
    for cls, code in _EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1
