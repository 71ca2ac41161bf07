"""Kernel operations that change cubes: add, update, delete, forget, share, revoke."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memcubed.backends.base import IndexEntry, Vector
from memcubed.cube.ids import new_cube_id, owned_cube_id
from memcubed.cube.model import CubeKind, CubeState, Grant, MemCube, Right
from memcubed.errors import (
    AlreadyExists,
    NotFound,
    UnknownPrincipal,
    ValidationError,
)
from memcubed.kernel import acl, audit, limits
from memcubed.kernel.base import Progress, bump, check_version, checked_vectors, utcnow
from memcubed.kernel.derivation import DerivationOps
from memcubed.kernel.events import Event
from memcubed.kernel.validation import check_text, parse
from memcubed.schemas.ops import CubeCreate, CubeUpdate, PrincipalPublic, ShareRequest

__all__ = ["WriteOps"]

_Prepared = tuple[list[CubeCreate], list[MemCube], list[Vector | None], list[tuple[Vector, ...]]]
"""What ``add_many`` writes, validated and embedded: the creates, their cubes and their vectors."""


class WriteOps(DerivationOps):
    """The writing system calls; each runs in one transaction and writes one version and one audit record per cube."""

    def add(self, data: CubeCreate | dict[str, Any], *, principal: str) -> MemCube:
        """Store a new plaintext memory owned by ``principal``; see :meth:`add_many`."""
        return self.add_many([data], principal=principal)[0]

    def add_many(self, items: Sequence[CubeCreate | dict[str, Any]], *, principal: str,
                 progress: Progress | None = None, vectors: Vector | None = None) -> list[MemCube]:
        """Store several memories atomically: all of them or, on any error, none.

        An item's ``id``, when given, is the caller's own key for it: the cube is stored under
        ``owned_cube_id(principal, id)`` (scoped to the owner, so another principal cannot squat it).

        Args:
            vectors: precomputed embeddings, one row per item, from the store's own embedder
                (skips embedding; rows are L2-normalised here).

        Raises:
            ValidationError: ``items`` is not a list, an item is malformed or too long,
                or ``vectors`` has the wrong shape or non-finite values.
            BudgetExceeded: the batch, an item's ``meta`` or tags exceed their limit, or the principal's
                quota (cubes, stored bytes) would be exceeded; nothing is written.
            AlreadyExists: the principal already added an item's ``id``, or the batch repeats an id.
            NotFound: a ``derived_from`` source does not exist (at that version) or the principal cannot read it.
            UnknownPrincipal: ``principal`` is not registered.
        """
        actor = self._actor(principal)
        prepared = self._prepare_adds(items, actor, progress, vectors)
        with self._write() as pending:
            self._insert_adds(pending, prepared, actor)
        return prepared[1]

    def _prepare_adds(self, items: Sequence[CubeCreate | dict[str, Any]], actor: PrincipalPublic,
                      progress: Progress | None = None, vectors: Vector | None = None,
                      ) -> _Prepared:
        """Validate and embed what :meth:`add_many` stores (no write): the creates, their cubes, their vectors."""
        if isinstance(items, (str, bytes, dict)) or not isinstance(items, Sequence):
            raise ValidationError(f"add_many takes a list of cubes, got {type(items).__name__}", field="items")
        limits.check_batch(self.settings, len(items))
        creates = [parse(CubeCreate, item) for item in items]
        for create in creates:
            check_text(create.text, self.settings.max_text_chars)
            limits.check_content(self.settings, meta=create.meta, tags=create.tags)
        ids = [owned_cube_id(actor.name, c.id) if c.id is not None else new_cube_id() for c in creates]
        if len(set(ids)) != len(ids):
            # A conflict like an id already stored, not malformed input: each item alone is valid.
            raise AlreadyExists("the batch repeats a cube id", field="id")
        if vectors is None:
            rows = self._embed([c.text for c in creates], progress)
        else:
            rows = checked_vectors(vectors, creates, self)
        chunks = self._embed_chunks([c.text for c in creates])
        now = utcnow()
        cubes = [
            MemCube(id=cube_id, namespace=c.namespace, owner=actor.name, source=c.source,
                    derived_from=c.derived_from, created_at=now, updated_at=now, version=1,
                    importance=c.importance, tags=c.tags, text=c.text, meta=c.meta, valid_from=c.valid_from,
                    valid_to=c.valid_to)
            for cube_id, c in zip(ids, creates, strict=True)
        ]
        return creates, cubes, list(rows), chunks

    def _insert_adds(self, pending: list[Event], prepared: _Prepared,
                     actor: PrincipalPublic) -> None:
        """Write what :meth:`_prepare_adds` prepared, inside the caller's write transaction."""
        creates, cubes, rows, chunks = prepared
        self._check_derivations(creates, actor)
        for cube, vector, chunk in zip(cubes, rows, chunks, strict=True):
            self.store.insert_cube(cube, IndexEntry(context=self._context(cube), vector=vector, chunks=chunk))
        self._commit_many(pending, [(cube, {"namespace": cube.namespace, "kind": cube.kind.value}) for cube in cubes],
                          "add", actor)
        limits.check_quota(self.store, self.settings, actor.name)

    def _check_derivations(self, creates: Sequence[CubeCreate], actor: PrincipalPublic) -> None:
        """``derived_from`` on a new cube needs read on every source, at a version that exists: a link to a
        cube the caller cannot read would be a side channel (it turns stale when the victim edits)."""
        refs = [ref for create in creates for ref in create.derived_from]
        current = self.store.load_cubes(list(dict.fromkeys(ref.id for ref in refs)))
        for ref in refs:
            source = current.get(ref.id)
            if (source is None or source.state is CubeState.DELETED or ref.version > source.version
                    or acl.effective_right(source, actor) is None):
                raise NotFound(f"derived_from: cube {ref.id} v{ref.version} not found", id=ref.id, field="derived_from")

    def update(self, cube_id: str, data: CubeUpdate | dict[str, Any], *, principal: str) -> MemCube:
        """Change a cube's text or metadata, writing version n+1.

        Only plaintext content is the user's: an activation or parameter cube takes tags and importance
        alone. State changes through ``archive``, ``restore``, ``undelete`` and ``recompile``.

        Raises:
            ValidationError: malformed change, or a system-owned field of a derived cube.
            BudgetExceeded: ``meta`` or tags exceed their limit, or the owner's byte quota would be exceeded.
            VersionConflict: ``expected_version`` is set and differs from the current version.
            AccessDenied: the principal lacks write (admin, to change ``source``: provenance is not content).
            NotFound: the cube does not exist or is deleted.
        """
        actor = self._actor(principal)
        change = parse(CubeUpdate, data)
        if change.text is not None:
            check_text(change.text, self.settings.max_text_chars)
        limits.check_content(self.settings, meta=change.meta, tags=change.tags)
        vector = self._embed([change.text])[0] if change.text is not None else None
        chunks = self._embed_chunks([change.text])[0] if change.text is not None else ()
        fields = change.model_dump(exclude_none=True, exclude={"expected_version"})
        with self._write() as pending:
            cube = self._load(cube_id, actor, self._update_right(change))
            check_version(cube, change.expected_version)
            if cube.kind is not CubeKind.PLAINTEXT and set(fields) - _DERIVED_WRITABLE:
                raise ValidationError(f"the system owns the content of {cube.kind.value} cube {cube.id}: update may"
                                      f" change only {', '.join(sorted(_DERIVED_WRITABLE))}", id=cube.id,
                                      field=sorted(set(fields) - _DERIVED_WRITABLE)[0])
            updates: dict[str, Any] = {name: getattr(change, name) for name in fields}
            new = bump(cube, **updates)
            reindex = None
            if change.text is not None or change.source is not None:
                if vector is None and self.embedder is not None:
                    vector = self.embedder.embed([new.text or ""])[0]
                    chunks = self._embed_chunks([new.text])[0]
                reindex = IndexEntry(context=self._context(new, before=new.id), vector=vector, chunks=chunks)
            self.store.replace_cube(new, reindex=reindex)
            if reindex is not None:
                self._refresh_context(new, itself=False)
            limits.check_quota(self.store, self.settings, new.owner)
            self._commit(pending, new, "update", actor, {"fields": sorted(fields)})
            if change.text is not None:
                self._mark_derived_stale(new, actor, pending)
        return self._present(new, actor)

    @staticmethod
    def _update_right(change: CubeUpdate) -> Right:
        """Content (text, meta, tags, importance) needs write; provenance (``source``) needs admin."""
        return Right.ADMIN if change.source is not None else Right.WRITE

    def delete(self, cube_id: str, *, principal: str, expected_version: int | None = None) -> MemCube:
        """Soft-delete a cube: hidden from get and search, its history kept. Needs admin on the cube."""
        actor = self._actor(principal)
        with self._write() as pending:
            cube = self._load(cube_id, actor, Right.ADMIN)
            check_version(cube, expected_version)
            new = bump(cube, state=CubeState.DELETED)
            self.store.replace_cube(new)
            self._refresh_context(new, itself=False)
            self._commit(pending, new, "delete", actor, {})
            self._mark_derived_stale(new, actor, pending)
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
            new, released = self._erase(cube, actor, pending, "forget", {})
        self.store.scrub()
        self._release_blobs(released)
        return self._present(new, actor)

    def _erase(self, cube: MemCube, actor: PrincipalPublic, pending: list[Event], op: str,
               details: dict[str, Any]) -> tuple[MemCube, list[str]]:
        """Purge ``cube``'s payload and embeddings from every version, leaving a tombstone audited as ``op``
        (inside the caller's write); return the tombstone and the blobs to release after commit."""
        self.store.purge_payloads(cube.id)
        # meta goes too: a user's meta may repeat the content (question/answer pairs, titles).
        new = bump(cube, state=CubeState.DELETED, forgotten=True, text=None, payload=None, segments=[], meta={})
        self.store.replace_cube(new)
        self._refresh_context(new, itself=False)
        self._commit(pending, new, op, actor, details)
        # Derived KV/adapters encode the erased text: they go stale and lose their payload too.
        purged = self._mark_derived_stale(new, actor, pending, purge=True)
        return new, [*_payload_digests(cube), *(d for c in purged for d in _payload_digests(c))]

    def share(self, cube_id: str, data: ShareRequest | dict[str, Any], *, principal: str) -> MemCube:
        """Grant a right on a cube to another principal, replacing any grant it had.

        Needs share on the cube, or admin when the new or the replaced grant is admin. The grant is
        versioned on its own (``acl_version``) and audited; the cube's content version does not change.
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
            # A new grant waits for its recipient's consent (unless the operator auto-accepts); a changed one
            # keeps the consent it had.
            had = next((g for g in cube.acl if g.principal == grantee.name), None)
            accepted = self.settings.auto_accept_shares or (had is not None and had.accepted)
            new = self._set_acl(pending, cube, acl.with_grant(cube.acl, grantee.name, request.right, accepted=accepted),
                                "share", actor, {"principal": grantee.name, "right": request.right.name.lower(),
                                                 "accepted": accepted})
        return self._present(new, actor)

    def revoke(self, cube_id: str, grantee: str, *, principal: str) -> MemCube:
        """Remove every right ``grantee`` holds on a cube; takes effect at once. No grant: nothing changes."""
        actor = self._actor(principal)
        with self._write() as pending:
            cube = self._load(cube_id, actor, Right.SHARE)
            acl.require(cube, actor, acl.needed_to_change_grant(cube, grantee, None))
            if all(g.principal != grantee for g in cube.acl):
                return self._present(cube, actor)
            new = self._set_acl(pending, cube, acl.without_grant(cube.acl, grantee), "revoke", actor,
                                {"principal": grantee})
        return self._present(new, actor)

    def _set_acl(self, pending: list[Event], cube: MemCube, grants: list[Grant], op: str, actor: PrincipalPublic,
                 details: dict[str, Any]) -> MemCube:
        """Write a cube's new grants: ``acl_version`` + 1 and an audit record, the content version unchanged
        (so nothing compiled from the cube, such as its KV segments, is invalidated)."""
        new = cube.model_copy(update={"acl": grants, "acl_version": cube.acl_version + 1})
        self.store.replace_cube(new)
        self._refresh_context(new, itself=True)
        self._audit(pending, actor.name, op, cube.id, cube.version, {**details, "acl_version": new.acl_version,
                                                                     audit.CONTENT: audit.acl_hash(new, self.seal)})
        return new


_DERIVED_WRITABLE = {"tags", "importance"}
"""What ``update`` may change on an activation or parameter cube (the rest is the system's)."""


def _payload_digests(cube: MemCube) -> list[str]:
    """Every blob a cube's payload uses: its head blob and, for activation cubes, each KV segment."""
    return [*cube.segments, cube.payload.sha256] if cube.payload is not None else list(cube.segments)
