"""Derivation: which cubes a derived cube was built from, and what using or rebuilding it requires.

Rights flow through derivation: an activation cube, an adapter or an extracted fact may be used only by
a principal who may read, at use time, every source it encodes; a change to a source marks what was
built from it stale (and a forget purges its payload).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memcubed.cube.model import CubeKind, CubeState, MemCube, Right
from memcubed.errors import AccessDenied, Conflict, ValidationError
from memcubed.kernel import acl
from memcubed.kernel.base import KernelBase, bump
from memcubed.kernel.events import Event
from memcubed.schemas.ops import PrincipalPublic

__all__ = ["DerivationOps", "require_plaintext"]


class DerivationOps(KernelBase):
    """The derivation checks every operation on derived cubes shares."""

    def _require_sources(self, cube: MemCube, actor: PrincipalPublic) -> None:
        """Rights flow through derivation: using ``cube`` needs read, now, on every source it encodes.

        Checked at use time (not when the cube was built), so a revoke, delete or forget of a source
        acts at once on every activation, adapter or extracted fact built from it, whoever holds it.

        Raises:
            AccessDenied: the principal cannot read a source, or a source was deleted or forgotten.
        """
        if not cube.derived_from:
            return
        current = self.store.load_cubes([ref.id for ref in cube.derived_from])
        for ref in cube.derived_from:
            source = current.get(ref.id)
            if source is None or source.forgotten or source.state is CubeState.DELETED:
                raise AccessDenied(f"a source of cube {cube.id} was deleted; it can no longer be used",
                                   id=cube.id, principal=actor.name)
            held = acl.effective_right(source, actor)
            if held is None:
                raise AccessDenied(f"{actor.name!r} needs read on every source of cube {cube.id}",
                                   id=cube.id, principal=actor.name, needed="read")

    def _readable_derivation(self, cube: MemCube, actor: PrincipalPublic) -> bool:
        """Whether ``actor`` may use ``cube`` through every source it was derived from."""
        try:
            self._require_sources(cube, actor)
        except AccessDenied:
            return False
        return True

    def _plaintext_sources(self, cube_ids: Sequence[str], actor: PrincipalPublic, *, op: str,
                           done: str) -> list[MemCube]:
        """The cubes an ``op`` derives a cube from, by id, in the order given (repeats dropped): readable,
        active plaintext with text, all in one namespace (``done`` names them in that error: "cached")."""
        if isinstance(cube_ids, str) or not cube_ids:
            raise ValidationError(f"{op} needs a list of at least one plaintext cube id", field="cube_ids")
        sources = [self._load(cube_id, actor, Right.READ) for cube_id in dict.fromkeys(cube_ids)]
        for source in sources:
            require_plaintext(source)
        if len({s.namespace for s in sources}) != 1:
            raise ValidationError(f"{done} cubes must share one namespace", field="cube_ids")
        return sources

    def _check_unchanged(self, sources: Sequence[MemCube]) -> None:
        """Inside the write: every source must still be at the version a derived cube was built from."""
        current = self.store.load_cubes([s.id for s in sources])
        for source in sources:
            now = current.get(source.id)
            if now is None or now.version != source.version or now.state is not CubeState.ACTIVE:
                raise Conflict(f"source {source.id} changed while a cube was built from it", id=source.id)

    def _current_sources(self, cube: MemCube, actor: PrincipalPublic) -> list[MemCube]:
        """The current versions of a derived cube's sources, for a recompile: deleted and forgotten ones
        left out, every other one readable active plaintext.

        Raises:
            ValidationError: no source is left (archive or delete the cube instead), or one is not plaintext.
            AccessDenied: the principal cannot read a remaining source.
        """
        current = self.store.load_cubes([ref.id for ref in cube.derived_from])
        sources: list[MemCube] = []
        for ref in cube.derived_from:
            found = current.get(ref.id)
            if found is None or found.forgotten or found.state is CubeState.DELETED:
                continue
            source = self._load(ref.id, actor, Right.READ)
            require_plaintext(source)
            sources.append(source)
        if not sources:
            raise ValidationError(f"no source of {cube.id} is left to compile from: archive or delete it", id=cube.id)
        return sources

    def _mark_derived_stale(self, source: MemCube, actor: PrincipalPublic, pending: list[Event], *,
                            purge: bool = False) -> list[MemCube]:
        """Mark every active cube compiled or trained from ``source`` stale: its input changed.

        With ``purge`` (the source was forgotten) the derived cubes also lose their payload, whatever
        their state, since it encodes the forgotten text (a derived plaintext cube, an extracted fact, is
        forgotten outright: text, embeddings and meta erased from every version); the caller releases
        the returned cubes' blobs after commit. Call inside the transaction that changes ``source``; each
        changed cube gets a version and an audit record naming the change that caused it.
        """
        changed: list[MemCube] = []
        for cube_id in self.store.derived_from(source.id):
            derived = self.store.load_cube(cube_id)
            if derived is None or (derived.state is not CubeState.ACTIVE and not purge) or derived.forgotten:
                continue
            if purge and derived.kind is CubeKind.PLAINTEXT:
                # An extracted fact's text is its sources' content: forgetting a source forgets it too.
                self.store.purge_payloads(derived.id)
                erased = bump(derived, state=CubeState.DELETED, forgotten=True, text=None, meta={})
                self.store.replace_cube(erased)
                self._commit(pending, erased, "purge", actor, {"source": source.id, "source_version": source.version})
                changed.append(derived)
                continue
            if purge and derived.payload is None and not derived.segments:
                continue
            updates: dict[str, Any] = {"state": CubeState.STALE if derived.state is CubeState.ACTIVE else derived.state}
            if purge:
                updates |= {"payload": None, "segments": []}
            stale = bump(derived, **updates)
            self.store.replace_cube(stale)
            self._commit(pending, stale, "purge" if purge else "stale", actor,
                         {"source": source.id, "source_version": source.version})
            changed.append(derived)
        return changed


def require_plaintext(cube: MemCube) -> None:
    """Raise ``ValidationError`` unless ``cube`` is active plaintext with text (what derived cubes come from)."""
    if cube.kind is not CubeKind.PLAINTEXT or cube.state is not CubeState.ACTIVE or not cube.text:
        raise ValidationError(f"cube {cube.id} is not active plaintext", id=cube.id)
