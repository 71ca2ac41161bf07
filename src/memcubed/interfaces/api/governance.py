"""The Python API's methods on principals, consent and API keys (a base of ``Memcubed``)."""

from __future__ import annotations

from datetime import datetime

from memcubed.cube.model import MemCube
from memcubed.interfaces.api.base import ClientBase
from memcubed.schemas.ops import PrincipalPublic
from memcubed.schemas.server import ApiKeyIssued, ApiKeyPublic

__all__ = ["GovernanceMethods"]


class GovernanceMethods(ClientBase):
    """Principals, shares offered to you, trust, and API keys, as the client's principal."""

    def create_principal(self, name: str, *, kind: str = "user", is_admin: bool = False) -> PrincipalPublic:
        """Register a principal (administrators)."""
        return self._open().create_principal({"name": name, "kind": kind, "is_admin": is_admin},
                                            principal=self.principal)

    def list_principals(self, *, limit: int | None = None, offset: int = 0) -> list[PrincipalPublic]:
        """List principals (administrators)."""
        self._checked("list_principals", limit=limit, offset=offset)
        return self._open().list_principals(principal=self.principal, limit=limit, offset=offset)

    principals = list_principals

    def get_principal(self, name: str | None = None) -> PrincipalPublic:
        """Return a principal: yourself (default), or anyone for administrators."""
        self._checked("get_principal", name=name or self.principal)
        return self._open().get_principal(name or self.principal, principal=self.principal)

    def accept_share(self, cube_id: str) -> MemCube:
        """Accept a cube shared with you: from now on it may enter your chat retrieval."""
        return self._open().accept_share(cube_id, principal=self.principal)

    def decline_share(self, cube_id: str) -> MemCube:
        """Decline (or give up) a cube shared with you: your grant is removed at once."""
        return self._open().decline_share(cube_id, principal=self.principal)

    def set_trust(self, policy: str, name: str | None = None) -> PrincipalPublic:
        """Set whose memories enter your prompts (``own``, ``accepted`` or ``all``); administrators: ``name``'s."""
        return self._open().set_trust(policy, principal=self.principal, name=name)

    def disable_principal(self, name: str) -> PrincipalPublic:
        """Refuse every call and key of ``name`` until enabled again (administrators)."""
        return self._open().disable_principal(name, principal=self.principal)

    def enable_principal(self, name: str) -> PrincipalPublic:
        """Let a disabled principal act again (administrators)."""
        return self._open().enable_principal(name, principal=self.principal)

    def delete_principal(self, name: str) -> PrincipalPublic:
        """Delete ``name``: a tombstone keeps owning its cubes, its keys are revoked (administrators)."""
        return self._open().delete_principal(name, principal=self.principal)

    def set_admin(self, name: str, is_admin: bool = True) -> PrincipalPublic:
        """Promote ``name`` to administrator, or demote it (never the last one)."""
        return self._open().set_admin(name, is_admin, principal=self.principal)

    def create_api_key(self, owner: str | None = None, *, label: str = "", expires_at: datetime | None = None,
                       scope: str = "admin") -> ApiKeyIssued:
        """Issue an API key for ``owner`` (default: yourself), optionally expiring and scoped (``read``,
        ``write`` or ``admin``); the returned ``key`` is never shown again."""
        self._checked("create_api_key", owner=owner, label=label, expires_at=expires_at, scope=scope)
        return self._open().create_api_key(owner or self.principal,
                                          {"label": label, "expires_at": expires_at, "scope": scope},
                                          principal=self.principal)

    def revoke_api_key(self, key_id: str) -> ApiKeyPublic:
        """Revoke an API key at once."""
        self._checked("revoke_api_key", key_id=key_id)
        return self._open().revoke_api_key(key_id, principal=self.principal)

    def list_api_keys(self, owner: str | None = None, *, limit: int = 1000, offset: int = 0) -> list[ApiKeyPublic]:
        """List API keys without secrets: yours, or (administrators) ``owner``'s or everyone's."""
        self._checked("list_api_keys", owner=owner, limit=limit, offset=offset)
        return self._open().list_api_keys(principal=self.principal, owner=owner, limit=limit, offset=offset)

    api_keys = list_api_keys
