"""Rights decisions: who holds which right on a cube."""

from __future__ import annotations

from memcubed.cube.model import Grant, MemCube, Right
from memcubed.errors import AccessDenied
from memcubed.schemas.ops import PrincipalPublic

__all__ = ["effective_right", "needed_to_change_grant", "require", "trusted", "with_grant", "without_grant"]


def effective_right(cube: MemCube, principal: PrincipalPublic) -> Right | None:
    """Return the strongest right ``principal`` holds on ``cube``, or None."""
    if principal.is_admin or cube.owner == principal.name:
        return Right.ADMIN
    rights = [g.right for g in cube.acl if g.principal == principal.name]
    return max(rights) if rights else None


def require(cube: MemCube, principal: PrincipalPublic, right: Right) -> None:
    """Raise unless ``principal`` holds at least ``right`` on ``cube``.

    Raises:
        AccessDenied: the principal's right is missing or weaker.
    """
    held = effective_right(cube, principal)
    if held is None or held < right:
        raise AccessDenied(
            f"{principal.name!r} needs {right.name.lower()} on cube {cube.id}",
            id=cube.id, principal=principal.name, needed=right.name.lower(),
        )


def with_grant(acl: list[Grant], principal: str, right: Right, *, accepted: bool = True) -> list[Grant]:
    """Return ``acl`` with ``principal`` holding exactly ``right`` (``accepted`` or pending), sorted by principal."""
    kept = [g for g in acl if g.principal != principal]
    return sorted([*kept, Grant(principal=principal, right=right, accepted=accepted)], key=lambda g: g.principal)


def trusted(cube: MemCube, principal: PrincipalPublic) -> bool:
    """Whether ``cube`` may enter ``principal``'s prompts under its trust policy (reading it is not enough:
    a share the recipient has not accepted stays out of its chat)."""
    if cube.owner == principal.name or principal.trust == "all":
        return True
    return principal.trust == "accepted" and any(g.principal == principal.name and g.accepted for g in cube.acl)


def without_grant(acl: list[Grant], principal: str) -> list[Grant]:
    """Return ``acl`` without any grant to ``principal``."""
    return [g for g in acl if g.principal != principal]


def needed_to_change_grant(cube: MemCube, grantee: str, new_right: Right | None) -> Right:
    """The right an actor needs to set ``grantee``'s grant to ``new_right`` (None: revoke it).

    Granting, changing or removing an admin grant needs admin; any other change needs share.
    """
    current = max((g.right for g in cube.acl if g.principal == grantee), default=None)
    return Right.ADMIN if Right.ADMIN in (new_right, current) else Right.SHARE
