"""Kernel operations that change principals: disable, enable, delete (a tombstone), promote and demote.

A deleted principal is not removed: its row stays as a tombstone (disabled, ``deleted_at`` set) that keeps
owning its cubes, so nobody registered later under the same name inherits them; its keys are revoked.
Every change is audited; the last enabled administrator can be neither demoted, disabled nor deleted.
"""

from __future__ import annotations

from typing import Any

from memcubed.errors import AccessDenied, Conflict, UnknownPrincipal
from memcubed.kernel.base import KernelBase, utcnow
from memcubed.schemas.ops import PrincipalPublic

__all__ = ["PrincipalOps"]


class PrincipalOps(KernelBase):
    """Principal administration (administrators only)."""

    def disable_principal(self, name: str, *, principal: str) -> PrincipalPublic:
        """Refuse every call and key of ``name`` until it is enabled again (its cubes and keys are kept).

        Raises:
            AccessDenied: the caller is not an administrator.
            UnknownPrincipal: no principal has that name.
            Conflict: it is the last enabled administrator, or deleted.
        """
        return self._change(name, principal, "principal.disable", {"disabled": True})

    def enable_principal(self, name: str, *, principal: str) -> PrincipalPublic:
        """Let a disabled principal act again.

        Raises:
            AccessDenied: the caller is not an administrator.
            UnknownPrincipal: no principal has that name.
            Conflict: the principal was deleted (a tombstone is never enabled).
        """
        return self._change(name, principal, "principal.enable", {"disabled": False})

    def set_admin(self, name: str, is_admin: bool, *, principal: str) -> PrincipalPublic:
        """Promote ``name`` to administrator, or demote it.

        Raises:
            AccessDenied: the caller is not an administrator.
            UnknownPrincipal: no principal has that name.
            Conflict: demoting the last enabled administrator, or the principal was deleted.
        """
        return self._change(name, principal, "principal.set_admin", {"is_admin": bool(is_admin)})

    def delete_principal(self, name: str, *, principal: str) -> PrincipalPublic:
        """Delete ``name``: it becomes a disabled tombstone that keeps owning its cubes (not reassigned, and
        its name cannot be registered again); every live key it has is revoked, in the same transaction.

        Raises:
            AccessDenied: the caller is not an administrator.
            UnknownPrincipal: no principal has that name.
            Conflict: it is the last enabled administrator, or already deleted.
        """
        return self._change(name, principal, "principal.delete", {"disabled": True, "deleted_at": utcnow()})

    def _change(self, name: str, principal: str, op: str, updates: dict[str, Any]) -> PrincipalPublic:
        actor = self._actor(principal)
        if not actor.is_admin:
            raise AccessDenied("only administrators may change principals", principal=actor.name)
        with self._write() as pending:
            target = self.store.get_principal(name) if isinstance(name, str) else None
            if target is None:
                raise UnknownPrincipal(f"unknown principal {name!r}", principal=name)
            if target.deleted_at is not None:
                raise Conflict(f"principal {name!r} was deleted", principal=name)
            changed = target.model_copy(update=updates)
            if target.is_admin and not target.disabled and (changed.disabled or not changed.is_admin):
                others = [p for p in self.store.list_principals()
                          if p.is_admin and not p.disabled and p.name != target.name]
                if not others:
                    raise Conflict("the last enabled administrator cannot be demoted, disabled or deleted",
                                   principal=name)
            self.store.update_principal(changed)
            details: dict[str, Any] = {"name": target.name,
                                       **{k: v for k, v in updates.items() if k != "deleted_at"}}
            if op == "principal.delete":
                at = updates["deleted_at"]
                revoked = [r.key_id for r in self.store.list_api_keys(target.name) if r.revoked_at is None]
                for key_id in revoked:
                    self.store.revoke_api_key(key_id, at)
                details["revoked_keys"] = revoked
            self._audit(pending, actor.name, op, None, None, details)
        return changed
