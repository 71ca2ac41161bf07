"""Consent for shared memories: a share waits for its recipient, and a trust policy says whose cubes enter
a principal's prompts.

A cube shared with you is readable at once (``get`` lets you look before deciding), but it enters your
chat retrieval (``chat``, the proxy) only once you accept the share, or if your trust policy is ``all``.
``own`` keeps every shared cube out of your prompts; ``accepted`` (the default) admits accepted shares.
"""

from __future__ import annotations

from memcubed.cube.model import Grant, MemCube, Right
from memcubed.errors import AccessDenied, UnknownPrincipal, ValidationError
from memcubed.kernel import acl
from memcubed.kernel.writes import WriteOps
from memcubed.schemas.ops import PrincipalPublic, TrustPolicy

__all__ = ["TRUST_POLICIES", "ConsentOps"]

TRUST_POLICIES: tuple[TrustPolicy, ...] = ("own", "accepted", "all")


class ConsentOps(WriteOps):
    """Accepting and declining shares, and each principal's trust policy."""

    def accept_share(self, cube_id: str, *, principal: str) -> MemCube:
        """Accept the share of a cube made to you: from now on it may enter your chat retrieval.

        Raises:
            NotFound: no such cube, or you hold no right on it.
            ValidationError: you hold no grant on it (you own it, or read it as an administrator).
        """
        actor = self._actor(principal)
        with self._write() as pending:
            cube = self._load(cube_id, actor, Right.READ)
            grant = self._own_grant(cube, actor)
            if grant.accepted:
                return self._present(cube, actor)
            new = self._set_acl(pending, cube, acl.with_grant(cube.acl, actor.name, grant.right, accepted=True),
                                "share.accept", actor, {"principal": actor.name})
        return self._present(new, actor)

    def decline_share(self, cube_id: str, *, principal: str) -> MemCube:
        """Decline (or give up) a share made to you: your grant on the cube is removed at once.

        Raises:
            NotFound: no such cube, or you hold no right on it.
            ValidationError: you hold no grant on it.
        """
        actor = self._actor(principal)
        with self._write() as pending:
            cube = self._load(cube_id, actor, Right.READ)
            self._own_grant(cube, actor)
            new = self._set_acl(pending, cube, acl.without_grant(cube.acl, actor.name), "share.decline", actor,
                                {"principal": actor.name})
        return self._present(new, actor)

    def set_trust(self, policy: str, *, principal: str, name: str | None = None) -> PrincipalPublic:
        """Set whose cubes enter a principal's prompts: ``own``, ``accepted`` or ``all`` (yours, or anyone's
        for administrators).

        Raises:
            ValidationError: an unknown policy.
            AccessDenied: a non-administrator sets another principal's policy.
            UnknownPrincipal: no principal has that name.
        """
        actor = self._actor(principal)
        if policy not in TRUST_POLICIES:
            raise ValidationError(f"trust policy must be one of {', '.join(TRUST_POLICIES)}", field="policy")
        target_name = actor.name if name is None else name
        if target_name != actor.name and not actor.is_admin:
            raise AccessDenied("only administrators may set another principal's trust policy", principal=actor.name)
        with self._write() as pending:
            target = self.store.get_principal(target_name) if isinstance(target_name, str) else None
            if target is None:
                raise UnknownPrincipal(f"unknown principal {target_name!r}", principal=target_name)
            changed = target.model_copy(update={"trust": policy})
            self.store.update_principal(changed)
            self._audit(pending, actor.name, "principal.trust", None, None, {"name": target.name, "trust": policy})
        return changed

    @staticmethod
    def _own_grant(cube: MemCube, actor: PrincipalPublic) -> Grant:
        found = next((g for g in cube.acl if g.principal == actor.name), None)
        if found is None:
            raise ValidationError(f"cube {cube.id} was not shared with {actor.name!r}", id=cube.id)
        return found
