"""Blob garbage collection: tensor blobs that no live cube references are removed after a grace period.

Blobs are written before the cube that references them commits (KV segments as they are computed, an
adapter after training), so a worker killed in between, a cancelled or failed job, a job whose output was
discarded (its lease was lost) or a crash between a commit and the release of an old payload leaves blobs
that nothing uses. Forget, archive and recompile release what they drop at once; this sweep catches the
rest. A blob is kept while any cube that is not forgotten names it: soft-deleted ones too, since
``undelete`` brings them back, until their retention ends and they are purged (first, by the same call);
and while it is younger than the grace period, counted from when it was last written or put again, so
the fresh blobs of in-flight jobs are never collected.

The sweep runs inside a write transaction: a commit that would reference a blob waits for it, and checks
its blobs are still there once it runs (``_require_blobs``), so no committed cube ever points at a
collected blob. One implementation for every blob store (``BlobStore.iter_written`` and ``delete``).
"""

from __future__ import annotations

import time

from memcubed.errors import AccessDenied
from memcubed.kernel.retention import RetentionOps
from memcubed.kernel.validation import parse
from memcubed.schemas.gc import MAX_LISTED, GcInput, GcReport

__all__ = ["GcOps"]


class GcOps(RetentionOps):
    """Garbage collection of unreferenced blobs, and of deleted cubes past their retention (administrators)."""

    def collect_garbage(self, *, principal: str, dry_run: bool = False, grace_s: float | None = None,
                        retention_s: float | None = None) -> GcReport:
        """Purge the cubes soft-deleted more than ``retention_s`` ago (see ``kernel.retention``), then remove the
        blobs no live cube references that were written more than ``grace_s`` seconds ago.

        Args:
            principal: the acting principal; must be an administrator.
            dry_run: report what would be purged and removed, and change nothing (no audit record either).
            grace_s: the grace period; ``settings.blob_gc_grace_s`` when None.
            retention_s: the deleted-cube retention; ``settings.deleted_retention_s`` when None.

        Raises:
            AccessDenied: the principal is not an administrator.
            ValidationError: a negative grace period.
        """
        actor = self._actor(principal)
        if not actor.is_admin:
            raise AccessDenied("only administrators may collect garbage", principal=actor.name)
        checked = parse(GcInput, {"dry_run": dry_run, "grace_s": grace_s, "retention_s": retention_s})
        grace = self.settings.blob_gc_grace_s if checked.grace_s is None else checked.grace_s
        retention = self.settings.deleted_retention_s if checked.retention_s is None else checked.retention_s
        purged = self.purge_deleted(principal=actor.name, dry_run=checked.dry_run, retention_s=retention)
        with self._write() as pending:
            cutoff = time.time() - grace
            referenced = self.store.referenced_digests()
            stored = young = 0
            doomed: list[tuple[str, int]] = []
            for digest, written, size in self.blobs.iter_written():
                stored += 1
                if digest in referenced:
                    continue
                if written > cutoff:
                    young += 1
                else:
                    doomed.append((digest, size))
            if not checked.dry_run:
                for digest, _ in doomed:
                    self.blobs.delete(digest)
                if doomed:
                    self._audit(pending, actor.name, "gc", None, None,
                                {"collected": len(doomed), "bytes": sum(s for _, s in doomed), "grace_s": grace})
        return GcReport(dry_run=checked.dry_run, grace_s=grace, blobs=stored, referenced=stored - young - len(doomed),
                        young=young, collected=len(doomed), bytes=sum(s for _, s in doomed),
                        digests=[d for d, _ in doomed[:MAX_LISTED]], retention_s=retention, purged=purged)
