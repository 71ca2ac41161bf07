"""Kernel operations on the audit log and principals."""

from __future__ import annotations

from typing import Any

from memcubed.cube.model import Right
from memcubed.errors import (
    AccessDenied,
    UnknownPrincipal,
    ValidationError,
)
from memcubed.kernel import acl, audit, limits
from memcubed.kernel.base import KernelBase, utcnow
from memcubed.kernel.validation import parse
from memcubed.schemas.ops import AuditRecord, AuditReport, PrincipalCreate, PrincipalPublic

__all__ = ["GovernanceOps"]


class GovernanceOps(KernelBase):
    """Audit and principal management (administrators only, except a cube's own audit trail)."""

    def audit_log(self, *, principal: str, cube_id: str | None = None, after_seq: int = 0,
                  limit: int = 1000) -> list[AuditRecord]:
        """Return audit records in order: of one cube, or all of them (administrators only).

        A cube's whole trail (every grantee, right and reader-visible change) is for those who may
        administer the cube; someone who may only read, write or share it gets the records of their own
        actions on it. A cube the caller cannot read is not found.
        """
        actor = self._actor(principal)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValidationError("limit must be a positive integer", field="limit")
        limits.check_page(self.settings, limit)
        only: str | None = None
        if cube_id is not None:
            cube = self._load(cube_id, actor, Right.READ, include_deleted=True)
            cube_id = cube.id
            held = acl.effective_right(cube, actor)
            only = None if held is not None and held >= Right.ADMIN else actor.name
        elif not actor.is_admin:
            raise AccessDenied("only administrators may read the whole audit log", principal=actor.name)
        records = []
        for record in self.store.iter_audit(cube_id=cube_id, after_seq=after_seq):
            if only is not None and record.principal != only:
                continue
            records.append(record)
            if len(records) >= limit:
                break
        return records

    def verify_audit(self, *, principal: str) -> AuditReport:
        """Check the whole keyed hash chain, the signed head outside the store, and that every cube's stored
        rows are what its audit records say was written (administrators only)."""
        actor = self._actor(principal)
        if not actor.is_admin:
            raise AccessDenied("only administrators may verify the audit log", principal=actor.name)
        return audit.verify(self.store, self.seal)

    def create_principal(self, data: PrincipalCreate | dict[str, Any], *, principal: str) -> PrincipalPublic:
        """Register a user, agent or service principal (administrators only).

        Raises:
            AlreadyExists: the name is taken.
        """
        actor = self._actor(principal)
        request = parse(PrincipalCreate, data)
        if not actor.is_admin:
            raise AccessDenied("only administrators may create principals", principal=actor.name)
        created = PrincipalPublic(name=request.name, kind=request.kind, is_admin=request.is_admin, created_at=utcnow())
        with self._write() as pending:
            self.store.insert_principal(created)
            self._audit(pending, actor.name, "principal.create", None, None,
                        {"name": created.name, "is_admin": created.is_admin})
        return created

    def list_principals(self, *, principal: str, limit: int | None = None, offset: int = 0) -> list[PrincipalPublic]:
        """Return principals by name (administrators only): every one, or the page ``offset .. offset+limit``.

        Raises:
            ValidationError: ``limit`` below 1 or a negative ``offset``.
        """
        actor = self._actor(principal)
        if not actor.is_admin:
            raise AccessDenied("only administrators may list principals", principal=actor.name)
        if (limit is not None and limit < 1) or offset < 0:
            raise ValidationError("limit must be >= 1 and offset >= 0", field="limit")
        everyone = self.store.list_principals()
        return everyone[offset:] if limit is None else everyone[offset : offset + limit]

    def get_principal(self, name: str, *, principal: str) -> PrincipalPublic:
        """Return one principal: yourself, or anyone for administrators.

        Raises:
            AccessDenied: a non-administrator asks about another principal.
            UnknownPrincipal: no principal has that name.
        """
        actor = self._actor(principal)
        if name == actor.name:
            return actor
        if not actor.is_admin:
            raise AccessDenied("only administrators may look up other principals", principal=actor.name)
        found = self.store.get_principal(name) if isinstance(name, str) else None
        if found is None:
            raise UnknownPrincipal(f"unknown principal {name!r}", principal=name)
        return found
