"""The kernel: the one entry point. Every operation runs
validate → authorize → execute → version → audit → emit event, in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np

from memcubed.backends.base import BlobStore, Embedder, IndexEntry, SearchScope, StorageBackend, Vector
from memcubed.cube.ids import new_cube_id, parse_cube_id
from memcubed.cube.model import CubeState, MemCube, Right
from memcubed.engines.text import TextEngine
from memcubed.errors import (
    AccessDenied,
    ConfigurationError,
    NotFound,
    UnknownPrincipal,
    ValidationError,
    VersionConflict,
)
from memcubed.kernel import acl, audit
from memcubed.kernel.events import Event, EventBus
from memcubed.kernel.stats import touched
from memcubed.kernel.validation import check_text, parse
from memcubed.schemas.ops import (
    AuditRecord,
    AuditReport,
    CubeCreate,
    CubeUpdate,
    HistoryEntry,
    PrincipalCreate,
    PrincipalPublic,
    SearchHit,
    SearchMode,
    SearchRequest,
    SearchResult,
    ShareRequest,
)
from memcubed.settings import Settings

__all__ = ["ADMIN", "Kernel", "Progress"]

ADMIN = "admin"
"""The administrator principal every store is created with."""

Progress = Callable[[int, int], None]
"""Called with (done, total) as long work advances."""


class Kernel:
    """Governs every memory: rights, versions, audit and events around the store and engines.

    Args:
        store: the storage backend (only the kernel touches it).
        blobs: tensor payload storage.
        embedder: text embedder, or None for lexical-only stores; fixed for a store's lifetime.
        settings: limits and tuning.
    """

    def __init__(self, store: StorageBackend, *, blobs: BlobStore, embedder: Embedder | None,
                 settings: Settings | None = None, text: TextEngine | None = None) -> None:
        self.store = store
        self.blobs = blobs
        self.embedder = embedder
        self.settings = settings or Settings()
        self.text = text or TextEngine()
        self.events = EventBus()
        self._bootstrap()

    # -- lifecycle -------------------------------------------------------------
    def _bootstrap(self) -> None:
        wanted = f"{self.embedder.name}|{self.embedder.dim}" if self.embedder else "none"
        with self._write() as pending:
            recorded = self.store.get_meta("embedder")
            if recorded is None:
                self.store.set_meta("embedder", wanted)
                if self.embedder is not None:
                    self.store.configure_vectors(self.embedder.dim)
            elif recorded != wanted:
                raise ConfigurationError(
                    f"this store was indexed with embedder {recorded!r}; opened with {wanted!r}",
                    recorded=recorded, requested=wanted,
                )
            if self.store.get_principal(ADMIN) is None:
                admin = PrincipalPublic(name=ADMIN, kind="service", is_admin=True, created_at=_now())
                self.store.insert_principal(admin)
                self._audit(pending, ADMIN, "principal.create", None, None, {"name": ADMIN, "is_admin": True})

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    @contextmanager
    def _write(self) -> Iterator[list[Event]]:
        """One write transaction; events collected in it are emitted only after commit."""
        pending: list[Event] = []
        with self.store.transaction():
            yield pending
        for event in pending:
            self.events.emit(event)

    def _audit(self, pending: list[Event], principal: str, op: str, cube_id: str | None, version: int | None,
               details: dict[str, Any]) -> None:
        record = audit.append(self.store, at=_now(), principal=principal, op=op, cube_id=cube_id,
                              version=version, details=details)
        pending.append(Event(kind=op, principal=principal, at=record.at, cube_id=cube_id, version=version,
                             details=details))

    def _actor(self, principal: str) -> PrincipalPublic:
        if not isinstance(principal, str) or not principal:
            raise ValidationError("principal must be a non-empty string", field="principal")
        actor = self.store.get_principal(principal)
        if actor is None:
            raise UnknownPrincipal(f"unknown principal {principal!r}", principal=principal)
        if actor.disabled:
            raise AccessDenied(f"principal {principal!r} is disabled", principal=principal)
        return actor

    def _load(self, cube_id: str, actor: PrincipalPublic, right: Right, *, include_deleted: bool = False) -> MemCube:
        cube = self.store.load_cube(parse_cube_id(cube_id))
        if cube is None or (cube.state is CubeState.DELETED and not include_deleted):
            raise NotFound(f"cube {cube_id} not found", id=cube_id)
        acl.require(cube, actor, right)
        return cube

    def _commit(self, pending: list[Event], cube: MemCube, op: str, actor: PrincipalPublic,
                details: dict[str, Any]) -> None:
        """Record a new version of ``cube`` and its audit record."""
        self.store.insert_version(HistoryEntry(version=cube.version, op=op, actor=actor.name, at=cube.updated_at,
                                               cube=cube))
        self._audit(pending, actor.name, op, cube.id, cube.version, details)

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

    def _present(self, cube: MemCube, actor: PrincipalPublic) -> MemCube:
        held = acl.effective_right(cube, actor)
        return cube if held is not None and held >= Right.SHARE else cube.model_copy(update={"acl": []})

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

    # -- writes ----------------------------------------------------------------
    def add(self, data: CubeCreate | dict[str, Any], *, principal: str) -> MemCube:
        """Store a new plaintext memory owned by ``principal``; see :meth:`add_many`."""
        return self.add_many([data], principal=principal)[0]

    def add_many(self, items: Sequence[CubeCreate | dict[str, Any]], *, principal: str,
                 progress: Progress | None = None, vectors: Vector | None = None) -> list[MemCube]:
        """Store several memories atomically: all of them or, on any error, none.

        Args:
            vectors: precomputed embeddings, one row per item, from the store's own embedder
                (skips embedding; rows are L2-normalised here).

        Raises:
            ValidationError: an item is malformed, too long, the batch repeats an id or is too large,
                or ``vectors`` has the wrong shape or non-finite values.
            AlreadyExists: an item's ``id`` is taken.
            UnknownPrincipal: ``principal`` is not registered.
        """
        actor = self._actor(principal)
        if len(items) > self.settings.max_batch:
            raise ValidationError(f"batch of {len(items)} exceeds max_batch {self.settings.max_batch}")
        creates = [parse(CubeCreate, item) for item in items]
        for create in creates:
            check_text(create.text, self.settings.max_text_chars)
        ids = [parse_cube_id(c.id) if c.id is not None else new_cube_id() for c in creates]
        if len(set(ids)) != len(ids):
            raise ValidationError("the batch repeats a cube id", field="id")
        rows = self._embed([c.text for c in creates], progress) if vectors is None else _checked(vectors, creates, self)
        now = _now()
        cubes = [
            MemCube(id=cube_id, namespace=c.namespace, owner=actor.name, source=c.source,
                    derived_from=c.derived_from, created_at=now, updated_at=now, version=1,
                    importance=c.importance, tags=c.tags, text=c.text, meta=c.meta)
            for cube_id, c in zip(ids, creates, strict=True)
        ]
        with self._write() as pending:
            for cube, vector in zip(cubes, rows, strict=True):
                self.store.insert_cube(cube, IndexEntry(context=self._context(cube), vector=vector))
                self._commit(pending, cube, "add", actor, {"namespace": cube.namespace, "kind": cube.kind.value})
        return cubes

    def update(self, cube_id: str, data: CubeUpdate | dict[str, Any], *, principal: str) -> MemCube:
        """Change a cube's text or metadata, writing version n+1.

        Raises:
            VersionConflict: ``expected_version`` is set and differs from the current version.
            AccessDenied: the principal lacks write.
            NotFound: the cube does not exist or is deleted.
        """
        actor = self._actor(principal)
        change = parse(CubeUpdate, data)
        if change.text is not None:
            check_text(change.text, self.settings.max_text_chars)
        vector = self._embed([change.text])[0] if change.text is not None else None
        fields = change.model_dump(exclude_none=True, exclude={"expected_version"})
        with self._write() as pending:
            cube = self._load(cube_id, actor, Right.WRITE)
            _check_version(cube, change.expected_version)
            updates: dict[str, Any] = {name: getattr(change, name) for name in fields}
            new = _bump(cube, **updates)
            reindex = None
            if change.text is not None or change.source is not None:
                if vector is None and self.embedder is not None:
                    vector = self.embedder.embed([new.text or ""])[0]
                reindex = IndexEntry(context=self._context(new, before=new.id), vector=vector)
            self.store.replace_cube(new, reindex=reindex)
            if reindex is not None or change.state is not None:
                self._refresh_context(new, itself=False)
            self._commit(pending, new, "update", actor, {"fields": sorted(fields)})
        return self._present(new, actor)

    def delete(self, cube_id: str, *, principal: str, expected_version: int | None = None) -> MemCube:
        """Soft-delete a cube: hidden from get and search, its history kept. Needs admin on the cube."""
        actor = self._actor(principal)
        with self._write() as pending:
            cube = self._load(cube_id, actor, Right.ADMIN)
            _check_version(cube, expected_version)
            new = _bump(cube, state=CubeState.DELETED)
            self.store.replace_cube(new)
            self._refresh_context(new, itself=False)
            self._commit(pending, new, "delete", actor, {})
        return self._present(new, actor)

    def forget(self, cube_id: str, *, principal: str) -> MemCube:
        """Purge a cube's payload and embeddings from every version, keeping a tombstone and the audit trail.

        Raises:
            NotFound: the cube does not exist or was already forgotten.
            AccessDenied: the principal lacks admin on the cube.
        """
        actor = self._actor(principal)
        with self._write() as pending:
            cube = self._load(cube_id, actor, Right.ADMIN, include_deleted=True)
            if cube.forgotten:
                raise NotFound(f"cube {cube_id} was already forgotten", id=cube_id)
            self.store.purge_payloads(cube.id)
            new = _bump(cube, state=CubeState.DELETED, forgotten=True, text=None, payload=None)
            self.store.replace_cube(new)
            self._refresh_context(new, itself=False)
            self._commit(pending, new, "forget", actor, {})
        if cube.payload is not None:
            self.blobs.delete(cube.payload.sha256)
        return self._present(new, actor)

    def share(self, cube_id: str, data: ShareRequest | dict[str, Any], *, principal: str) -> MemCube:
        """Grant a right on a cube to another principal, replacing any grant it had.

        Needs share on the cube, or admin when the new or the replaced grant is admin.
        """
        actor = self._actor(principal)
        request = parse(ShareRequest, data)
        with self._write() as pending:
            cube = self._load(cube_id, actor, Right.SHARE)
            acl.require(cube, actor, acl.needed_to_change_grant(cube, request.principal, request.right))
            grantee = self.store.get_principal(request.principal)
            if grantee is None:
                raise UnknownPrincipal(f"unknown principal {request.principal!r}", principal=request.principal)
            if grantee.name == cube.owner:
                raise ValidationError("the owner already holds every right", field="principal")
            new = _bump(cube, acl=acl.with_grant(cube.acl, grantee.name, request.right))
            self.store.replace_cube(new)
            self._refresh_context(new, itself=True)
            self._commit(pending, new, "share", actor, {"principal": grantee.name, "right": request.right.name.lower()})
        return self._present(new, actor)

    def revoke(self, cube_id: str, grantee: str, *, principal: str) -> MemCube:
        """Remove every right ``grantee`` holds on a cube; takes effect at once. No grant: nothing changes."""
        actor = self._actor(principal)
        with self._write() as pending:
            cube = self._load(cube_id, actor, Right.SHARE)
            acl.require(cube, actor, acl.needed_to_change_grant(cube, grantee, None))
            if all(g.principal != grantee for g in cube.acl):
                return self._present(cube, actor)
            new = _bump(cube, acl=acl.without_grant(cube.acl, grantee))
            self.store.replace_cube(new)
            self._refresh_context(new, itself=True)
            self._commit(pending, new, "revoke", actor, {"principal": grantee})
        return self._present(new, actor)

    # -- reads -----------------------------------------------------------------
    def get(self, cube_id: str, *, principal: str, as_of: datetime | None = None,
            include_deleted: bool = False) -> MemCube:
        """Return a cube's current state, or its state at ``as_of``; counts as an access.

        Raises:
            NotFound: no such cube, it is deleted, or it did not exist yet at ``as_of``.
            AccessDenied: the principal lacks read (rights are always the current ones).
        """
        actor = self._actor(principal)
        if as_of is not None and as_of.tzinfo is None:
            raise ValidationError("as_of must carry a timezone", field="as_of")
        cube = self._load(cube_id, actor, Right.READ, include_deleted=include_deleted or as_of is not None)
        found = cube
        if as_of is not None:
            entry = self.store.load_version_as_of(cube.id, as_of)
            if entry is None:
                raise NotFound(f"cube {cube_id} did not exist at {as_of.isoformat()}", id=cube_id)
            found = entry.cube
        # Count the access only once the read succeeded: a rejected read must leave the store unchanged.
        self._touch([cube], actor)
        return self._present(found, actor)

    def get_version(self, cube_id: str, version: int, *, principal: str) -> HistoryEntry:
        """Return version ``version`` of a cube as it was written.

        Raises:
            NotFound: no such version.
        """
        actor = self._actor(principal)
        cube = self._load(cube_id, actor, Right.READ, include_deleted=True)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValidationError(f"version must be a positive integer, got {version!r}", field="version")
        entry = self.store.load_version(cube.id, version)
        if entry is None:
            raise NotFound(f"cube {cube_id} has no version {version}", id=cube_id, version=version)
        return entry.model_copy(update={"cube": self._present(entry.cube, actor)})

    def history(self, cube_id: str, *, principal: str, limit: int = 100, offset: int = 0) -> list[HistoryEntry]:
        """Return a cube's versions, oldest first (paginated)."""
        actor = self._actor(principal)
        cube = self._load(cube_id, actor, Right.READ, include_deleted=True)
        if not 1 <= limit <= 1000 or offset < 0:
            raise ValidationError("limit must be 1..1000 and offset >= 0", field="limit")
        entries = self.store.list_versions(cube.id, limit=limit, offset=offset)
        return [e.model_copy(update={"cube": self._present(e.cube, actor)}) for e in entries]

    def search(self, request: SearchRequest | dict[str, Any], *, principal: str) -> SearchResult:
        """Hybrid (or single-signal) retrieval over the cubes the principal may read.

        Rights and filters are applied inside the index queries. Each hit says
        which signal found it, with rank and raw score.
        """
        started = time.perf_counter()
        actor = self._actor(principal)
        req = parse(SearchRequest, request)
        if req.mode is SearchMode.VECTOR and self.embedder is None:
            raise ConfigurationError("vector search needs an embedder; this store has none", field="mode")
        scope = SearchScope(principal=actor.name, is_admin=actor.is_admin, namespace=req.namespace,
                            filters=req.filters)
        limit = max(req.k, self.text.config.candidates)
        vector: Vector | None = None
        embed_ms = 0.0
        if req.mode is not SearchMode.LEXICAL and self.embedder is not None:
            t0 = time.perf_counter()
            vector = self.embedder.embed([req.query])[0]
            embed_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        lexical: list[tuple[str, float]] = []
        if req.mode is not SearchMode.VECTOR:
            match = self.text.build_match(req.query)
            lexical = (self.store.lexical_search(match, scope, limit, context_weight=self.text.config.context_weight)
                       if match else [])
        dense = self.store.vector_search(vector, scope, limit) if vector is not None else []
        fused = self.text.fuse(lexical, dense, req.k)
        index_ms = (time.perf_counter() - t0) * 1000
        cubes = self.store.load_cubes([hit.cube_id for hit in fused])
        hits = [SearchHit(cube=self._present(cubes[h.cube_id], actor), score=h.score, signals=h.signals)
                for h in fused if h.cube_id in cubes]
        self._touch([hit.cube for hit in hits], actor)
        return SearchResult(hits=hits, embed_ms=embed_ms, index_ms=index_ms,
                            total_ms=(time.perf_counter() - started) * 1000)

    def _touch(self, cubes: Sequence[MemCube], actor: PrincipalPublic) -> None:
        """Count reads: update access statistics (no new version) and emit access events."""
        if not cubes:
            return
        now = _now()
        half_life = self.settings.hotness_half_life_s
        with self.store.transaction():
            current = self.store.load_cubes([c.id for c in cubes])
            stats = {cid: touched(c.stats, now, half_life) for cid, c in current.items()}
            self.store.record_access(stats)
        for cube in cubes:
            self.events.emit(Event(kind="access", principal=actor.name, at=now, cube_id=cube.id,
                                   version=cube.version))

    # -- audit and principals -----------------------------------------------------
    def audit_log(self, *, principal: str, cube_id: str | None = None, after_seq: int = 0,
                  limit: int = 1000) -> list[AuditRecord]:
        """Return audit records in order: of one cube (needs read on it) or all of them (admins only)."""
        actor = self._actor(principal)
        if cube_id is not None:
            cube_id = self._load(cube_id, actor, Right.READ, include_deleted=True).id
        elif not actor.is_admin:
            raise AccessDenied("only administrators may read the whole audit log", principal=actor.name)
        records = []
        for record in self.store.iter_audit(cube_id=cube_id, after_seq=after_seq):
            records.append(record)
            if len(records) >= limit:
                break
        return records

    def verify_audit(self, *, principal: str) -> AuditReport:
        """Check the whole hash chain (administrators only)."""
        actor = self._actor(principal)
        if not actor.is_admin:
            raise AccessDenied("only administrators may verify the audit log", principal=actor.name)
        return audit.verify(self.store)

    def create_principal(self, data: PrincipalCreate | dict[str, Any], *, principal: str) -> PrincipalPublic:
        """Register a user, agent or service principal (administrators only).

        Raises:
            AlreadyExists: the name is taken.
        """
        actor = self._actor(principal)
        request = parse(PrincipalCreate, data)
        if not actor.is_admin:
            raise AccessDenied("only administrators may create principals", principal=actor.name)
        created = PrincipalPublic(name=request.name, kind=request.kind, is_admin=request.is_admin, created_at=_now())
        with self._write() as pending:
            self.store.insert_principal(created)
            self._audit(pending, actor.name, "principal.create", None, None,
                        {"name": created.name, "is_admin": created.is_admin})
        return created

    def list_principals(self, *, principal: str) -> list[PrincipalPublic]:
        """Return every principal (administrators only)."""
        actor = self._actor(principal)
        if not actor.is_admin:
            raise AccessDenied("only administrators may list principals", principal=actor.name)
        return self.store.list_principals()


def _now() -> datetime:
    return datetime.now(UTC)


def _bump(cube: MemCube, **changes: Any) -> MemCube:
    """The next version of ``cube`` with ``changes`` applied."""
    return cube.model_copy(update={**changes, "version": cube.version + 1, "updated_at": _now()})


def _checked(vectors: Vector, items: Sequence[object], kernel: Kernel) -> list[Vector | None]:
    """Validate caller-supplied embeddings against the store's embedder and normalise them."""
    if kernel.embedder is None:
        raise ValidationError("this store has no embedder; it cannot take vectors", field="vectors")
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.shape != (len(items), kernel.embedder.dim) or not np.isfinite(matrix).all():
        raise ValidationError(f"vectors must be finite with shape ({len(items)}, {kernel.embedder.dim}),"
                              f" got {matrix.shape}", field="vectors")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return list(matrix / np.maximum(norms, 1e-12))


def _check_version(cube: MemCube, expected: int | None) -> None:
    if expected is not None and expected != cube.version:
        raise VersionConflict(f"cube {cube.id} is at version {cube.version}, not {expected}",
                              id=cube.id, expected=expected, actual=cube.version)
