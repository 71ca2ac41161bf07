"""Kernel operations on API keys: create, revoke, list, and authenticate a bearer token.

A key is ``mck_<key_id>_<secret>``: ``key_id`` (16 hex digits) finds the stored record, the secret
(32 random bytes, URL-safe base64) is stored only as its sha256. A high-entropy secret needs no
slow password hash: nobody can guess a preimage of a 256-bit random value, however fast sha256 is.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from memcubed.errors import AccessDenied, AuthenticationFailed, NotFound, UnknownPrincipal, ValidationError
from memcubed.kernel.base import ADMIN, KernelBase, utcnow
from memcubed.kernel.validation import parse
from memcubed.schemas.ops import PrincipalPublic
from memcubed.schemas.server import SCOPE_LEVEL, ApiKeyCreate, ApiKeyIssued, ApiKeyPublic, ApiKeyRecord

__all__ = ["KEY_PREFIX", "KeyOps"]

KEY_PREFIX = "mck"
"""Every API key starts with ``mck_``, so secret scanners and people can recognise one."""

_KEY = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{16}})_([A-Za-z0-9_-]{{43}})$")
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")


class KeyOps(KernelBase):
    """API keys: how principals authenticate to the server. Secrets are shown once and stored hashed."""

    def create_api_key(self, owner: str, data: ApiKeyCreate | dict[str, Any] | None = None, *,
                       principal: str) -> ApiKeyIssued:
        """Issue a new API key for ``owner``; an administrator may issue one for anyone, others only for themselves.

        Returns:
            The key's public fields plus the whole key, which is never shown again.

        Raises:
            AccessDenied: a non-administrator asks for another principal's key.
            UnknownPrincipal: ``owner`` is not registered.
            ValidationError: the label is malformed.
        """
        actor = self._actor(principal)
        request = parse(ApiKeyCreate, data if data is not None else {})
        if owner != actor.name and not actor.is_admin:
            raise AccessDenied("only administrators may create keys for other principals", principal=actor.name)
        if not isinstance(owner, str) or self.store.get_principal(owner) is None:
            raise UnknownPrincipal(f"unknown principal {owner!r}", principal=owner)
        now = utcnow()
        if request.expires_at is not None and (request.expires_at.tzinfo is None or request.expires_at <= now):
            raise ValidationError("expires_at must be a future time with a timezone", field="expires_at")
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        record = ApiKeyRecord(key_id=key_id, principal=owner, secret_hash=_digest(secret), label=request.label,
                              created_at=now, revoked_at=None, expires_at=request.expires_at, scope=request.scope)
        with self._write() as pending:
            self.store.insert_api_key(record)
            self._audit(pending, actor.name, "key.create", None, None,
                        {"key_id": key_id, "principal": owner, "label": request.label, "scope": record.scope,
                         "expires_at": None if record.expires_at is None else record.expires_at.isoformat()})
        return ApiKeyIssued(**_public(record).model_dump(), key=f"{KEY_PREFIX}_{key_id}_{secret}")

    def reset_admin_key(self, *, principal: str) -> ApiKeyIssued:
        """Revoke every live key of the administrator and issue it one new key, in one transaction.

        The only way, besides ``create_api_key``, that the administrator gets a key after the first
        start of a server: restarts never mint one (a revoked, leaked key must not be replaced by a
        new one printed in the logs). Audited as one ``key.revoke`` per revoked key and a ``key.create``
        labelled ``reset-admin``.

        Returns:
            The new key's public fields plus the whole key, which is never shown again.

        Raises:
            AccessDenied: the caller is not an administrator.
        """
        actor = self._actor(principal)
        if not actor.is_admin:
            raise AccessDenied("only administrators may reset the administrator's keys", principal=actor.name)
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        at = utcnow()
        record = ApiKeyRecord(key_id=key_id, principal=ADMIN, secret_hash=_digest(secret), label="reset-admin",
                              created_at=at, revoked_at=None)
        with self._write() as pending:
            for live in (r for r in self.store.list_api_keys(ADMIN) if r.revoked_at is None):
                self.store.revoke_api_key(live.key_id, at)
                self._audit(pending, actor.name, "key.revoke", None, None,
                            {"key_id": live.key_id, "principal": ADMIN})
            self.store.insert_api_key(record)
            self._audit(pending, actor.name, "key.create", None, None,
                        {"key_id": key_id, "principal": ADMIN, "label": record.label})
        return ApiKeyIssued(**_public(record).model_dump(), key=f"{KEY_PREFIX}_{key_id}_{secret}")

    def revoke_api_key(self, key_id: str, *, principal: str) -> ApiKeyPublic:
        """Revoke a key at once; its owner or an administrator may. Revoking a revoked key changes nothing.

        Raises:
            NotFound: no key has that id (``UnknownPrincipal`` is not used: keys are not principals).
            AccessDenied: the key belongs to another principal and the caller is not an administrator.
        """
        actor = self._actor(principal)
        record = self._key(key_id, actor)
        if record.revoked_at is not None:
            return _public(record)
        at = utcnow()
        with self._write() as pending:
            self.store.revoke_api_key(record.key_id, at)
            self._audit(pending, actor.name, "key.revoke", None, None,
                        {"key_id": record.key_id, "principal": record.principal})
        return _public(record.model_copy(update={"revoked_at": at}))

    def list_api_keys(self, *, principal: str, owner: str | None = None, limit: int = 1000,
                      offset: int = 0) -> list[ApiKeyPublic]:
        """Return API keys (never their secrets), oldest first: one principal's, or everyone's for administrators.

        Args:
            owner: whose keys; defaults to the caller's own, or every key when the caller is an administrator.

        Raises:
            AccessDenied: a non-administrator asks for another principal's keys.
            ValidationError: ``limit`` outside 1..1000 or a negative ``offset``.
        """
        actor = self._actor(principal)
        if not 1 <= limit <= 1000 or offset < 0:
            raise ValidationError("limit must be 1..1000 and offset >= 0", field="limit")
        if not actor.is_admin:
            if owner not in (None, actor.name):
                raise AccessDenied("only administrators may list other principals' keys", principal=actor.name)
            owner = actor.name
        records = sorted(self.store.list_api_keys(owner), key=lambda r: (r.created_at, r.key_id))
        return [_public(r) for r in records[offset : offset + limit]]

    def authenticate(self, token: str, *, operation: str | None = None) -> PrincipalPublic:
        """Return the principal a bearer token belongs to, if the key's scope covers ``operation``.

        The secret is compared in constant time; every failure gives the same error and message, so a
        caller learns nothing about which part was wrong.

        Args:
            operation: the operation the key is used for (a registry name; a server route of its own is
                ``write`` unless listed in ``READ_ROUTES``); None checks the key alone.

        Raises:
            AuthenticationFailed: the token is malformed, unknown, revoked or expired, or its principal is
                disabled.
            AccessDenied: the key's scope does not cover ``operation`` (audited as ``denied``).
        """
        match = _KEY.match(token) if isinstance(token, str) else None
        record = self.store.get_api_key(match.group(1)) if match else None
        valid = (match is not None and record is not None
                 and hmac.compare_digest(_digest(match.group(2)), record.secret_hash))
        owner = self.store.get_principal(record.principal) if valid and record is not None else None
        if (record is None or record.revoked_at is not None or owner is None or owner.disabled or not valid
                or (record.expires_at is not None and record.expires_at <= utcnow())):
            raise AuthenticationFailed("invalid, revoked, expired or unknown API key")
        if operation is not None:
            needed = self._operation_scope(operation)
            if SCOPE_LEVEL[record.scope] < SCOPE_LEVEL[needed]:
                with self._denials(owner.name, operation):
                    raise AccessDenied(f"this API key's scope is {record.scope}; {operation} needs {needed}",
                                       principal=owner.name, key_id=record.key_id, scope=record.scope,
                                       needed=needed)
        return owner

    def _key(self, key_id: str, actor: PrincipalPublic) -> ApiKeyRecord:
        record = self.store.get_api_key(key_id) if isinstance(key_id, str) and _KEY_ID.match(key_id) else None
        if record is None:
            raise NotFound(f"no API key {key_id!r}", key_id=key_id)
        if record.principal != actor.name and not actor.is_admin:
            raise AccessDenied("only administrators may revoke other principals' keys", principal=actor.name)
        return record


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _public(record: ApiKeyRecord) -> ApiKeyPublic:
    return ApiKeyPublic(key_id=record.key_id, principal=record.principal, label=record.label,
                        created_at=record.created_at, revoked_at=record.revoked_at, expires_at=record.expires_at,
                        scope=record.scope)
