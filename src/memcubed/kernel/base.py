"""The kernel's shared machinery: transactions, audit, rights checks, versions, index context.

Operations live in ``writes``, ``reads`` and ``governance``; ``Kernel`` combines them.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np

from memcubed.backends.base import BlobStore, Embedder, StorageBackend, Vector
from memcubed.cube.ids import parse_cube_id
from memcubed.cube.model import CubeState, CubeStats, MemCube, Right
from memcubed.engines.scheduler.signals import REQUEST
from memcubed.engines.text import TextEngine
from memcubed.engines.text.chunk import chunk_windows
from memcubed.errors import (
    AccessDenied,
    ClientClosed,
    Conflict,
    NotFound,
    UnknownPrincipal,
    ValidationError,
    VersionConflict,
)
from memcubed.kernel import acl, audit
from memcubed.kernel.denied import record_denied
from memcubed.kernel.embedder_record import META_KEY, check_embedder
from memcubed.kernel.events import Event, EventBus
from memcubed.kernel.lease import current_lease
from memcubed.kernel.models import ModelRegistry
from memcubed.kernel.outbox import EventWriter
from memcubed.kernel.seal import KEYED_FROM, AuditSeal
from memcubed.kernel.stats import touched
from memcubed.schemas.events import ACCESS
from memcubed.schemas.ops import HistoryEntry, PrincipalPublic
from memcubed.settings import Settings

__all__ = ["ADMIN", "KernelBase", "Progress", "bump", "check_version", "checked_vectors", "utcnow"]

ADMIN = "admin"
"""The administrator principal every store is created with."""

Progress = Callable[[int, int], None]
"""Called with (done, total) as long work advances."""

READ_ROUTES = frozenset({"whoami", "health"})
"""Server routes that are no kernel operation and only read."""

_guard = threading.local()  # set while an outermost kernel operation runs in this thread
_writes = threading.local()  # the pending events of each store's outermost write open in this thread


def _open_writes() -> dict[int, list[Event]]:
    """This thread's open outermost writes: the id of their store -> their pending events."""
    opened: dict[int, list[Event]] | None = getattr(_writes, "open", None)
    if opened is None:
        opened = _writes.open = {}
    return opened


class KernelBase:
    """State and helpers shared by every kernel operation (see ``Kernel``).

    Args:
        store: the storage backend (only the kernel touches it).
        blobs: tensor payload storage.
        embedder: text embedder, or None for lexical-only stores; fixed for a store's lifetime.
        settings: limits and tuning.
        models: the language models operations may name by id (``settings.models`` when omitted).
    """

    def __init__(self, store: StorageBackend, *, blobs: BlobStore, embedder: Embedder | None,
                 settings: Settings | None = None, text: TextEngine | None = None,
                 models: ModelRegistry | None = None, seal: AuditSeal | None = None) -> None:
        self.store = store
        self.seal = seal or audit.UNKEYED
        self.blobs = blobs
        self.embedder = embedder
        self.settings = settings or Settings()
        self.models = models or ModelRegistry.from_settings(self.settings)
        self.text = text or TextEngine()
        self.events = EventBus()
        self._search_pool: ThreadPoolExecutor | None = None
        self._closed = False
        self._accesses = EventWriter(store, self.settings)
        # Every audited write emits its events after commit: the head is checkpointed then, never ahead of the log.
        self.events.subscribe(lambda event: self.seal.checkpoint(self.store) if event.kind != "access" else None)
        self._bootstrap()

    # -- lifecycle -------------------------------------------------------------
    def _bootstrap(self) -> None:
        with self._write() as pending:
            check_embedder(self.store, self.embedder)
            # Vector writes and searches check that no re-embed switched the store since (kernel.reembed).
            self.store.expect_space(self.store.get_meta(META_KEY))
            if self.seal.key is not None and self.store.get_meta(KEYED_FROM) is None:
                head = self.store.audit_head()
                self.store.set_meta(KEYED_FROM, str(head[0] + 1 if head else 1))
                if head is not None:  # a store from before the seal: its chain is keyed from here on
                    self._audit(pending, ADMIN, "audit.key", None, None, {"keyed_from": head[0] + 1})
            if self.store.get_principal(ADMIN) is None:
                admin = PrincipalPublic(name=ADMIN, kind="service", is_admin=True, created_at=utcnow())
                self.store.insert_principal(admin)
                self._audit(pending, ADMIN, "principal.create", None, None, {"name": ADMIN, "is_admin": True})

    def close(self) -> None:
        """Flush the buffered access events (see ``flush_events``), stop the workers and close the store.

        Final: every later operation raises ``ClientClosed``; closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        beats = getattr(self, "_heartbeats", None)  # set by the first job this kernel ran (kernel.jobs)
        if beats is not None:
            beats.close()
        self._accesses.close()
        if self._search_pool is not None:
            self._search_pool.shutdown(wait=True)
            self._search_pool = None
        self.store.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (every operation then raises ``ClientClosed``)."""
        return self._closed

    def flush_events(self) -> int:
        """Write the access events buffered in this process to the event log and fold the whole log into
        cube stats, now (the background writer does this every ``events_flush_interval_s``).

        For tests, one-shot commands and the scheduler; do not call it inside a write transaction.
        Returns the access events folded by this call.

        Raises:
            BackendUnavailable: the store is busy or unreachable (the events stay buffered).
            StorageError: the store refused the write (the events stay buffered).
        """
        return self._accesses.flush()

    def _searcher(self) -> ThreadPoolExecutor:
        """The worker that runs the lexical query while the caller runs the vector query."""
        if self._search_pool is None:
            self._search_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memcubed-search")
        return self._search_pool

    @contextmanager
    def _write(self) -> Iterator[list[Event]]:
        """One write transaction; the events collected in it go to the event log in it (a rolled-back write
        logs nothing) and to in-process subscribers after commit.

        A write opened inside another one (of the same store, in the same thread) is a savepoint whose events
        join the outer write's: they are logged and emitted only when the outermost write commits, so no
        subscriber (the audit head checkpoint among them) ever sees a write that the outer one rolls back.
        """
        outer = _open_writes().get(id(self.store))
        if outer is not None:
            mark = len(outer)
            try:
                with self.store.transaction():
                    yield outer
            except BaseException:
                del outer[mark:]  # the savepoint rolled back: so do its events
                raise
            return
        pending: list[Event] = []
        lease = current_lease()  # inside a job: its output commits only while its worker holds the lease
        with self.store.transaction():
            _open_writes()[id(self.store)] = pending
            try:
                if lease is not None:
                    lease.open_write(self.store)
                try:
                    yield pending
                except BaseException:
                    if lease is not None:
                        lease.close_write(self.store, pending, ok=False)
                    raise
                if lease is not None:
                    lease.close_write(self.store, pending, ok=True)
                self.store.append_events(pending)
            finally:
                del _open_writes()[id(self.store)]
        for event in pending:
            self.events.emit(event)

    def _audit(self, pending: list[Event], principal: str, op: str, cube_id: str | None, version: int | None,
               details: dict[str, Any]) -> None:
        self._audit_many(pending, [audit.Entry(utcnow(), principal, op, cube_id, version, details)])

    def _audit_many(self, pending: list[Event], entries: Sequence[audit.Entry]) -> None:
        """Chain ``entries`` onto the audit log and queue their events, in order."""
        for record in audit.append_many(self.store, entries, self.seal):
            pending.append(Event(kind=record.op, principal=record.principal, at=record.at, cube_id=record.cube_id,
                                 version=record.version, details=record.details))

    @contextmanager
    def _denials(self, principal: object, operation: str) -> Iterator[None]:
        """Audit an ``AccessDenied`` raised by the operation run inside, once (by the outermost operation
        of the thread), in a transaction of its own after the operation's own one rolled back: the
        refused call changes nothing but that one record."""
        if getattr(_guard, "active", False):
            yield
            return
        _guard.active = True
        try:
            yield
        except AccessDenied as exc:
            _guard.active = False
            record_denied(self.store, principal, operation, exc, at=utcnow(), seal=self.seal)
            self.seal.checkpoint(self.store)
            raise
        finally:
            _guard.active = False

    def _operation_scope(self, operation: str) -> str:
        """The key scope ``operation`` needs (see ``Operation.scope``); server routes of their own that
        are no operation: ``read`` for those in ``READ_ROUTES``, else ``write``."""
        from memcubed.kernel.registry import OPERATIONS  # the registry is built on the kernel

        found = OPERATIONS.get(operation)
        return found.scope if found is not None else "read" if operation in READ_ROUTES else "write"

    def _actor(self, principal: str) -> PrincipalPublic:
        if self._closed:
            raise ClientClosed("this kernel is closed; open the store again")
        if not isinstance(principal, str) or not principal:
            raise ValidationError("principal must be a non-empty string", field="principal")
        actor = self.store.get_principal(principal)
        if actor is None:
            raise UnknownPrincipal(f"unknown principal {principal!r}", principal=principal)
        if actor.disabled:
            raise AccessDenied(f"principal {principal!r} is disabled", principal=principal)
        return actor

    def _load(self, cube_id: str, actor: PrincipalPublic, right: Right, *, include_deleted: bool = False) -> MemCube:
        """The cube ``cube_id`` if ``actor`` holds ``right`` on it.

        A cube the actor cannot read at all is reported exactly like a missing one, so ids cannot be
        probed; a reader lacking a stronger right learns nothing new from ``AccessDenied``.

        Raises:
            NotFound: no such cube, it is deleted (unless ``include_deleted``), or the actor cannot read it.
            AccessDenied: the actor may read the cube but lacks ``right``.
        """
        cube = self.store.load_cube(parse_cube_id(cube_id))
        if (cube is None or (cube.state is CubeState.DELETED and not include_deleted)
                or acl.effective_right(cube, actor) is None):
            raise NotFound(f"cube {cube_id} not found", id=cube_id)
        acl.require(cube, actor, right)
        return cube

    def _commit(self, pending: list[Event], cube: MemCube, op: str, actor: PrincipalPublic,
                details: dict[str, Any]) -> None:
        """Record a new version of ``cube`` and its audit record (which hashes the version as written)."""
        self._commit_many(pending, [(cube, details)], op, actor)

    def _commit_many(self, pending: list[Event], changes: Sequence[tuple[MemCube, dict[str, Any]]], op: str,
                     actor: PrincipalPublic) -> None:
        """:meth:`_commit` for several cubes, in order, with one statement for the versions and one for the
        audit records."""
        self.store.insert_versions([HistoryEntry(version=cube.version, op=op, actor=actor.name, at=cube.updated_at,
                                                 cube=cube) for cube, _ in changes])
        at = utcnow()
        self._audit_many(pending, [audit.Entry(at, actor.name, op, cube.id, cube.version,
                                               {**details, audit.CONTENT: audit.content_hash(cube, self.seal)})
                                   for cube, details in changes])

    def _context(self, cube: MemCube, *, before: str | None = None) -> str:
        """Lexical context of a cube: its event time and the preceding memory of the same source."""
        uri = cube.source.uri
        preceding = self.store.preceding(cube.namespace, uri, before=before) if uri else None
        return self.text.context_for(cube, preceding)

    def _refresh_context(self, cube: MemCube, *, itself: bool) -> None:
        """Re-derive the lexical context of the memory after ``cube`` (and of ``cube`` itself), whose
        inputs (text, state, readers) just changed; call inside the write transaction."""
        uri = cube.source.uri
        if not uri:
            return
        targets = [cube] if itself else []
        nxt = self.store.following(cube.namespace, uri, after=cube.id)
        if nxt is not None:
            targets.append(nxt)
        for target in targets:
            self.store.set_context(target.id, self._context(target, before=target.id))

    def _require_blobs(self, digests: Sequence[str]) -> None:
        """Inside the write transaction that will reference ``digests``: each blob is still stored (garbage
        collection sweeps under the same write lock, so one present now stays until this commits).

        Raises:
            Conflict: a blob was collected while the work that wrote or reused it ran (run it again).
        """
        for digest in dict.fromkeys(digests):
            if not self.blobs.exists(digest):
                raise Conflict(f"blob {digest} was collected while this work ran; run it again", sha256=digest)

    def _release_blobs(self, digests: Sequence[str]) -> None:
        """Delete the blobs no live cube still references (content-addressed blobs may be shared)."""
        for digest in dict.fromkeys(digests):
            if not self.store.blob_referenced(digest):
                self.blobs.delete(digest)

    def _present(self, cube: MemCube, actor: PrincipalPublic) -> MemCube:
        """``cube`` as ``actor`` may see it: grants only for share holders, access statistics (who else
        reads it, and when) only for those who may administer it; others get them empty."""
        held = acl.effective_right(cube, actor)
        hidden: dict[str, Any] = {}
        if held is None or held < Right.SHARE:
            hidden["acl"] = []
        if held is None or held < Right.ADMIN:
            hidden["stats"] = CubeStats()
        return cube.model_copy(update=hidden) if hidden else cube

    def _embed_chunks(self, texts: Sequence[str | None]) -> list[tuple[Vector, ...]]:
        """The vectors of each text's windows after the first (none for a text that fits the embedder's
        window, for an embedder whose ``window_tokens`` is 0, or unless ``settings.embed_windows``), in one batch."""
        window = self.embedder.window_tokens if self.embedder is not None and self.settings.embed_windows else 0
        pieces = [chunk_windows(text or "", window) for text in texts]
        flat = [w for windows in pieces for w in windows]
        if not flat:
            return [() for _ in texts]
        rows = iter(self._embed(flat))
        return [tuple(r for r in (next(rows) for _ in windows) if r is not None) for windows in pieces]

    def _embed(self, texts: Sequence[str], progress: Progress | None = None) -> list[Vector | None]:
        if self.embedder is None:
            return [None] * len(texts)
        rows: list[Vector | None] = []
        step = 256
        for start in range(0, len(texts), step):
            rows.extend(self.embedder.embed(texts[start : start + step]))
            if progress is not None:
                progress(min(start + step, len(texts)), len(texts))
        return rows

    def _touch(self, cubes: Sequence[MemCube], actor: PrincipalPublic) -> None:
        """Count reads: one access event per cube, buffered in process (no store write on the request
        path; see ``kernel.outbox``), and emitted to in-process subscribers.

        With ``settings.access_stats == "inline"`` (the benchmark's baseline) the stats are written here,
        in a write transaction of their own, and nothing is logged.
        """
        if not cubes:
            return
        now = utcnow()
        # One request id per read: the scheduler learns which cubes are retrieved together (REQUEST).
        details = {REQUEST: secrets.token_hex(6)}
        events = [Event(kind=ACCESS, principal=actor.name, at=now, cube_id=c.id, version=c.version, details=details)
                  for c in cubes]
        if self.settings.access_stats == "inline":
            with self.store.transaction():
                current = self.store.load_cubes([c.id for c in cubes])
                half_life = self.settings.hotness_half_life_s
                self.store.record_access({cid: touched(c.stats, now, half_life) for cid, c in current.items()})
        else:
            self._accesses.record(events)
        for event in events:
            self.events.emit(event)


def utcnow() -> datetime:
    return datetime.now(UTC)


def bump(cube: MemCube, **changes: Any) -> MemCube:
    """The next version of ``cube`` with ``changes`` applied."""
    return cube.model_copy(update={**changes, "version": cube.version + 1, "updated_at": utcnow()})


def checked_vectors(vectors: Vector, items: Sequence[object], kernel: KernelBase) -> list[Vector | None]:
    """Validate caller-supplied embeddings against the store's embedder and normalise them."""
    if kernel.embedder is None:
        raise ValidationError("this store has no embedder; it cannot take vectors", field="vectors")
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.shape != (len(items), kernel.embedder.dim) or not np.isfinite(matrix).all():
        raise ValidationError(f"vectors must be finite with shape ({len(items)}, {kernel.embedder.dim}),"
                              f" got {matrix.shape}", field="vectors")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return list(matrix / np.maximum(norms, 1e-12))


def check_version(cube: MemCube, expected: int | None) -> None:
    if expected is not None and expected != cube.version:
        raise VersionConflict(f"cube {cube.id} is at version {cube.version}, not {expected}",
                              id=cube.id, expected=expected, actual=cube.version)
