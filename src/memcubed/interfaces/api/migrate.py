"""``memcubed.migrate(...)``: copy a whole store to another location, possibly another backend."""

from __future__ import annotations

from pathlib import Path

from memcubed.composition import copy_between
from memcubed.kernel import Progress
from memcubed.schemas.ops import MigrationReport
from memcubed.settings import Settings

__all__ = ["migrate_store"]


def migrate_store(source: str | Path, target: str | Path, *, settings: Settings | None = None,
                  progress: Progress | None = None) -> MigrationReport:
    """Copy the store at ``source`` into a new, empty store at ``target``, then verify the copy.

    Either may be a SQLite file or a ``postgresql://`` DSN. Everything is copied as it is: principals,
    cubes with ACL, tags and statistics, every version, settings, API keys, jobs, blobs, and the audit
    chain record by record; the target is then checked (counts, its audit chain, a sample of cubes
    compared version by version).

    Args:
        progress: called with (cubes copied, cubes in total).

    Returns:
        The report; ``ok`` is False when verification found a difference (listed in ``problems``).

    Raises:
        StoreNotFound: there is no store at ``source``.
        Conflict: the target already holds data.
        ConfigurationError: the source's audit key is missing, or the target has another one configured.
        IntegrityError: a source blob no longer matches its hash.
        BackendUnavailable: a PostgreSQL server cannot be reached.
    """
    return copy_between(source, target, settings=settings, progress=progress)
