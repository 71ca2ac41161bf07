"""Kernel operations on a cube's lifecycle state: ``archive``, ``restore``, ``undelete`` and ``recompile``.

The system owns ``state``: ``update`` never writes it; these operations do, each with its own version
and audit record. Changing a cube's lifecycle needs admin on it (its owner, an administrator or an
admin grantee): a write grant covers content, not whether the cube exists or is served.
"""

from __future__ import annotations

from memcubed.backends.models.base import KVLanguageModel, LanguageModel
from memcubed.cube.model import CubeKind, CubeState, MemCube, Right
from memcubed.errors import ConfigurationError, NotFound, ValidationError
from memcubed.kernel.activation import ActivationOps
from memcubed.kernel.base import Progress, bump
from memcubed.kernel.events import Event
from memcubed.kernel.parameter import Control, ParameterOps, ShouldCancel, served_state
from memcubed.schemas.ops import PrincipalPublic

__all__ = ["LifecycleOps"]


class LifecycleOps(ActivationOps, ParameterOps):
    """Archive, restore, undelete and recompile, for every kind of cube."""

    def archive(self, cube_id: str, *, principal: str) -> MemCube:
        """Move a cube to cold storage: ``archived``, hidden from default searches, its history kept.

        An activation or parameter cube goes back to plaintext: its KV segments or adapter are dropped
        (blobs released when no live cube uses them), and every source it was built from is kept, a
        soft-deleted one restored (forgotten ones stay forgotten). An archived cube is returned unchanged.

        Raises:
            NotFound: no such cube, or it is deleted.
            AccessDenied: the principal lacks admin on the cube (or on a source to restore).
        """
        return self._archive(cube_id, self._actor(principal), restore_sources=True)

    def _archive(self, cube_id: str, actor: PrincipalPublic, *, restore_sources: bool) -> MemCube:
        """``archive``; without ``restore_sources`` (the scheduler evicting KV) deleted sources stay deleted."""
        with self._write() as pending:
            cube = self._load(cube_id, actor, Right.ADMIN)
            if cube.state is CubeState.ARCHIVED:
                return self._present(cube, actor)
            restored = self._restore_sources(cube, actor, pending) \
                if cube.kind is not CubeKind.PLAINTEXT and restore_sources else []
            new = bump(cube, state=CubeState.ARCHIVED, payload=None, segments=[]) \
                if cube.kind is not CubeKind.PLAINTEXT else bump(cube, state=CubeState.ARCHIVED)
            self.store.replace_cube(new)
            if cube.kind is CubeKind.PLAINTEXT:
                self._refresh_context(new, itself=False)
            self._commit(pending, new, "archive", actor, {"restored": restored})
        self._release_blobs([*cube.segments, *([cube.payload.sha256] if cube.payload else [])])
        return self._present(new, actor)

    def _restore_sources(self, cube: MemCube, actor: PrincipalPublic, pending: list[Event]) -> list[str]:
        """Bring back the soft-deleted sources of a derived cube being archived (admin on each)."""
        current = self.store.load_cubes([ref.id for ref in cube.derived_from])
        to_restore = [self._load(ref.id, actor, Right.ADMIN, include_deleted=True) for ref in cube.derived_from
                      if (s := current.get(ref.id)) is not None and s.state is CubeState.DELETED and not s.forgotten]
        for source in to_restore:
            back = bump(source, state=CubeState.ACTIVE)
            self.store.replace_cube(back)
            self._refresh_context(back, itself=True)
            self._commit(pending, back, "restore", actor, {"archived": cube.id})
        return [s.id for s in to_restore]

    def restore(self, cube_id: str, *, principal: str) -> MemCube:
        """Bring an archived plaintext cube back to ``active`` (an archived activation or parameter cube has
        no payload left: ``recompile`` it instead).

        Raises:
            ValidationError: the cube is not archived, or it is not plaintext.
            AccessDenied: the principal lacks admin on the cube.
        """
        actor = self._actor(principal)
        with self._write() as pending:
            cube = self._load(cube_id, actor, Right.ADMIN)
            if cube.state is not CubeState.ARCHIVED:
                raise ValidationError(f"cube {cube.id} is {cube.state.value}, not archived", id=cube.id)
            if cube.kind is not CubeKind.PLAINTEXT:
                raise ValidationError(f"cube {cube.id} is an archived {cube.kind.value} cube: recompile it",
                                      id=cube.id)
            new = bump(cube, state=CubeState.ACTIVE)
            self.store.replace_cube(new)
            self._refresh_context(new, itself=True)
            self._commit(pending, new, "restore", actor, {})
        return self._present(new, actor)

    def undelete(self, cube_id: str, *, principal: str) -> MemCube:
        """Bring a soft-deleted cube back to ``active`` (a forgotten one cannot come back; an adapter that
        failed its consolidation gate comes back ``inactive``). Cubes derived from it stay stale until
        they are recompiled.

        Raises:
            NotFound: no such cube, or it was forgotten.
            ValidationError: the cube is not deleted.
            AccessDenied: the principal lacks admin on the cube.
        """
        actor = self._actor(principal)
        with self._write() as pending:
            cube = self._load(cube_id, actor, Right.ADMIN, include_deleted=True)
            if cube.forgotten:
                raise NotFound(f"cube {cube_id} was forgotten; it cannot be undeleted", id=cube_id)
            if cube.state is not CubeState.DELETED:
                raise ValidationError(f"cube {cube.id} is {cube.state.value}, not deleted", id=cube.id)
            new = bump(cube, state=served_state(cube))
            self.store.replace_cube(new)
            self._refresh_context(new, itself=True)
            self._commit(pending, new, "undelete", actor, {})
        return self._present(new, actor)

    def recompile(self, cube_id: str, *, principal: str, lm: LanguageModel | KVLanguageModel,
                  control: Control | None = None, progress: Progress | None = None,
                  should_cancel: ShouldCancel | None = None) -> MemCube:
        """Build a stale or archived activation or parameter cube again from its sources' current versions,
        writing its next version (deleted and forgotten sources are left out).

        An activation cube is compiled again by ``lm`` (an open model); a parameter cube is retrained
        with the configuration it was trained with (``control``, ``should_cancel`` apply to it).

        Raises:
            ValidationError: the cube is plaintext, or none of its sources is left.
            AccessDenied: the principal lacks write on the cube or read on a remaining source.
            ConfigurationError: an activation cube and a model without KV access.
            VersionConflict / Conflict: the cube or a source changed meanwhile (recompile again).
            Cancelled: ``should_cancel`` returned True (the cube is unchanged).
        """
        actor = self._actor(principal)
        cube = self._load(cube_id, actor, Right.WRITE)
        if cube.kind is CubeKind.ACTIVATION:
            if not isinstance(lm, KVLanguageModel):
                raise ConfigurationError("recompiling an activation cube needs an open local model", field="model")
            return self._recompile_activation(cube, actor, lm, progress)
        if cube.kind is CubeKind.PARAMETER:
            return self._recompile_adapter(cube_id, principal=principal, lm=lm, control=control, progress=progress,
                                           should_cancel=should_cancel)
        raise ValidationError(f"cube {cube.id} is plaintext: only derived cubes are recompiled", id=cube.id)
