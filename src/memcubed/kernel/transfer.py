"""Copying a whole store between backends (``memcubed migrate``), then checking the copy.

The copy is exact, not replayed: principals, every cube with its ACL, tags, access statistics and
index entries, every version, store settings, API keys, jobs, blobs, and the audit log record by
record (same seq, time, hashes), so the target's chain verifies exactly as the source's did.
"""

from __future__ import annotations

from collections.abc import Callable

from memcubed.backends.base import BlobStore, IndexEntry, StorageBackend
from memcubed.errors import Conflict
from memcubed.kernel import audit
from memcubed.kernel.embedder_record import read_record
from memcubed.kernel.outbox import STATS_CURSOR
from memcubed.kernel.seal import AuditSeal
from memcubed.schemas.ops import MigrationReport

__all__ = ["copy_store", "require_empty"]

_ALL = 2**31 - 1
_SPOT_CHECKS = 50


def copy_store(source: StorageBackend, source_blobs: BlobStore, target: StorageBackend, target_blobs: BlobStore,
               *, progress: Callable[[int, int], None] | None = None,
               seals: tuple[AuditSeal, AuditSeal] = (audit.UNKEYED, audit.UNKEYED)) -> MigrationReport:
    """Copy everything in ``source`` into the empty ``target``, in one target transaction, then verify.

    Args:
        progress: called with (cubes copied, cubes in total).
        seals: the source's and the target's audit seals (the same key); the target's head is
            checkpointed after the copy.

    Returns:
        What was copied, and whether verification passed (``ok``) with any problems it found.

    Raises:
        Conflict: ``target`` already holds principals, cubes or audit records.
        IntegrityError: the source's embedder record is damaged.
    """
    require_empty(target)
    meta = source.list_meta()
    recorded = read_record(source)
    if recorded is not None and recorded.dim > 0:
        target.configure_vectors(recorded.dim)
    digests = list(source_blobs.iter_digests())
    for digest in digests:
        target_blobs.put(source_blobs.get(digest))  # get() checks the hash: a corrupt blob stops the copy
    cube_ids = list(source.iter_cube_ids())
    versions = audited = 0
    with target.transaction():
        principals = source.list_principals()
        for principal in principals:
            target.insert_principal(principal)
        for done, cube_id in enumerate(cube_ids, start=1):
            cube = source.load_cube(cube_id)
            assert cube is not None
            target.insert_cube(cube, source.load_index_entry(cube_id) or IndexEntry())
            for entry in source.list_versions(cube_id, limit=_ALL, offset=0):
                target.insert_version(entry)
                versions += 1
            if progress is not None and (done % 500 == 0 or done == len(cube_ids)):
                progress(done, len(cube_ids))
        for record in source.iter_audit():
            target.append_audit(record)
            audited += 1
        cursor = _copy_events(source, target, int(meta.get(STATS_CURSOR) or 0))
        for key, value in meta.items():
            target.set_meta(key, value if key != STATS_CURSOR else str(cursor))
        keys = source.list_api_keys()
        for key_record in keys:
            target.insert_api_key(key_record)
        jobs = source.list_jobs(principal=None, state=None, limit=_ALL, offset=0)
        for job in reversed(jobs):  # listed newest first; inserted oldest first so the queue keeps its order
            target.insert_job(job)
    report = MigrationReport(principals=len(principals), cubes=len(cube_ids), versions=versions,
                             audit_records=audited, blobs=len(digests), meta_keys=len(meta), api_keys=len(keys),
                             jobs=len(jobs), ok=True)
    seals[1].checkpoint(target)
    problems = _verify(source, source_blobs, target, target_blobs, report, seals)
    return report.model_copy(update={"ok": not problems, "problems": problems})


def _copy_events(source: StorageBackend, target: StorageBackend, cursor: int) -> int:
    """Append the source's event log to the target's, in order; return the target seq that matches the
    source seq ``cursor`` (the last copied event at or below it; 0 for none)."""
    after, folded = 0, 0
    while page := source.read_events(after_seq=after, limit=1000):
        target.append_events([logged.event for logged in page])
        folded += sum(1 for logged in page if logged.seq <= cursor)
        after = page[-1].seq
    seen, after = 0, 0
    while folded and (page := target.read_events(after_seq=after, limit=1000)):
        if seen + len(page) >= folded:
            return page[folded - seen - 1].seq
        seen, after = seen + len(page), page[-1].seq
    return 0


def require_empty(target: StorageBackend) -> None:
    """Raise ``Conflict`` unless ``target`` holds no principals, cubes or audit records."""
    if target.audit_head() is not None or target.list_principals() or next(target.iter_cube_ids(), None):
        raise Conflict("the target store is not empty; migrate copies into a new store only")


def _verify(source: StorageBackend, source_blobs: BlobStore, target: StorageBackend, target_blobs: BlobStore,
            report: MigrationReport, seals: tuple[AuditSeal, AuditSeal]) -> list[str]:
    """Compare counts, verify the target's audit chain, and compare a sample of cubes version by version."""
    problems: list[str] = []
    counts = {
        "principals": (report.principals, len(target.list_principals())),
        "cubes": (report.cubes, sum(1 for _ in target.iter_cube_ids())),
        "audit records": (report.audit_records, sum(1 for _ in target.iter_audit())),
        "blobs": (report.blobs, sum(1 for _ in target_blobs.iter_digests())),
        "settings": (report.meta_keys, len(target.list_meta())),
        "API keys": (report.api_keys, len(target.list_api_keys())),
        "jobs": (report.jobs, len(target.list_jobs(principal=None, state=None, limit=_ALL, offset=0))),
        "events": (_count_events(source), _count_events(target)),
    }
    problems += [f"{name}: source has {want}, target {got}" for name, (want, got) in counts.items() if want != got]
    chain = audit.verify(target, seals[1])
    if not chain.ok:
        problems += [f"target audit chain: {p}" for p in chain.problems]
    if audit.verify(source, seals[0]).ok != chain.ok:
        problems.append("the audit chain verifies differently on the source and the target")
    cube_ids = list(source.iter_cube_ids())
    step = max(1, len(cube_ids) // _SPOT_CHECKS)
    for cube_id in cube_ids[::step]:
        if source.load_cube(cube_id) != target.load_cube(cube_id):
            problems.append(f"cube {cube_id} differs")
        if source.load_index_entry(cube_id) is None and target.load_index_entry(cube_id) is not None:
            problems.append(f"cube {cube_id} gained an index entry")
        if source.list_versions(cube_id, limit=_ALL, offset=0) != target.list_versions(cube_id, limit=_ALL, offset=0):
            problems.append(f"versions of cube {cube_id} differ")
    return problems


def _count_events(store: StorageBackend) -> int:
    count, after = 0, 0
    while page := store.read_events(after_seq=after, limit=1000):
        count, after = count + len(page), page[-1].seq
    return count
