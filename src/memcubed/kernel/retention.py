"""Retention of soft-deleted cubes: a deleted cube keeps its text, history and blobs so that ``undelete``
can bring it back, but only for ``settings.deleted_retention_s``. After that it is purged: its payload,
text, meta and embeddings are erased from every version (like ``forget``: a tombstone and the audit trail
stay, so the audit chain still verifies), cubes derived from it go stale and lose their payload, and an
audit record ``purge`` (reason ``retention``) says so. Its blobs are then no longer referenced, and blob
garbage collection removes them once past its grace period.

Administrators run it through ``collect_garbage`` (``memcubed gc``); the scheduler's background loop runs
it after every tick."""

from __future__ import annotations

from datetime import timedelta

from memcubed.cube.model import CubeState
from memcubed.errors import AccessDenied
from memcubed.kernel.base import utcnow
from memcubed.kernel.writes import WriteOps

__all__ = ["RetentionOps"]


class RetentionOps(WriteOps):
    """Purges soft-deleted cubes past their retention (administrators)."""

    def purge_deleted(self, *, principal: str, dry_run: bool = False, retention_s: float | None = None) -> list[str]:
        """Purge every cube soft-deleted more than ``retention_s`` seconds ago; return their ids (id order).

        Each cube is purged in a write of its own, re-checked inside it, so a cube undeleted meanwhile is
        left alone and a failure leaves every other cube as it was.

        Args:
            principal: the acting principal; must be an administrator.
            dry_run: only list what would be purged (nothing written, nothing audited).
            retention_s: how long a deleted cube is kept; ``settings.deleted_retention_s`` when None.

        Raises:
            AccessDenied: the principal is not an administrator.
            ValidationError: a negative retention.
        """
        actor = self._actor(principal)
        if not actor.is_admin:
            raise AccessDenied("only administrators may purge deleted cubes", principal=actor.name)
        retention = self.settings.deleted_retention_s if retention_s is None else retention_s
        cutoff = utcnow() - timedelta(seconds=retention)
        due = self.store.deleted_cube_ids(cutoff)
        if dry_run:
            return due
        purged: list[str] = []
        for cube_id in due:
            with self._write() as pending:
                cube = self.store.load_cube(cube_id)
                if cube is None or cube.forgotten or cube.state is not CubeState.DELETED or cube.updated_at >= cutoff:
                    continue  # undeleted (or forgotten) since it was listed
                self._erase(cube, actor, pending, "purge", {"reason": "retention", "retention_s": retention,
                                                            "deleted_at": cube.updated_at.isoformat()})
            purged.append(cube_id)
        if purged:
            self.store.scrub()
        return purged
