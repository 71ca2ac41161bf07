"""Routes on principals and their API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.schemas.ops import PrincipalCreate, PrincipalPublic, TrustPolicy
from memcubed.schemas.server import ApiKeyCreate, ApiKeyIssued, ApiKeyPublic, Page

__all__ = ["router"]

router = APIRouter(tags=["principals"], responses=ERROR_RESPONSES)

PrincipalName = Annotated[str, Path(max_length=128, description="the principal's name")]
Limit = Annotated[int, Query(ge=1, le=1000, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=2**31, description="items to skip")]


@router.post("/principals", status_code=201, operation_id="create_principal")
def create_principal(body: PrincipalCreate, kernel: KernelDep, caller: Caller) -> PrincipalPublic:
    """Register a user, agent or service principal (administrators); give it a key with ``create_api_key``."""
    return kernel.create_principal(body, principal=caller)


@router.get("/principals", operation_id="list_principals")
def list_principals(kernel: KernelDep, caller: Caller, limit: Limit = 100, offset: Offset = 0) -> Page[PrincipalPublic]:
    """List principals by name (administrators)."""
    found = kernel.list_principals(principal=caller, limit=limit, offset=offset)
    return Page(items=found, next=offset + limit if len(found) == limit else None)


@router.get("/me", operation_id="whoami")
def whoami(kernel: KernelDep, caller: Caller) -> PrincipalPublic:
    """The principal the API key belongs to."""
    return kernel.get_principal(caller, principal=caller)


@router.post("/principals/{name}/disable", operation_id="disable_principal")
def disable_principal(name: PrincipalName, kernel: KernelDep, caller: Caller) -> PrincipalPublic:
    """Refuse every call and key of a principal until it is enabled again (administrators)."""
    return kernel.disable_principal(name, principal=caller)


@router.post("/principals/{name}/enable", operation_id="enable_principal")
def enable_principal(name: PrincipalName, kernel: KernelDep, caller: Caller) -> PrincipalPublic:
    """Let a disabled principal act again (administrators)."""
    return kernel.enable_principal(name, principal=caller)


@router.delete("/principals/{name}", operation_id="delete_principal")
def delete_principal(name: PrincipalName, kernel: KernelDep, caller: Caller) -> PrincipalPublic:
    """Delete a principal: a tombstone keeps owning its cubes and its keys are revoked (administrators)."""
    return kernel.delete_principal(name, principal=caller)


@router.put("/principals/{name}/trust", operation_id="set_trust")
def set_trust(name: PrincipalName, kernel: KernelDep, caller: Caller,
              policy: Annotated[TrustPolicy, Body(embed=True)]) -> PrincipalPublic:
    """Set whose memories enter a principal's prompts: own, accepted shares, or all readable (yours, or
    anyone's for administrators)."""
    return kernel.set_trust(policy, principal=caller, name=name)


@router.put("/principals/{name}/admin", operation_id="set_admin")
def set_admin(name: PrincipalName, kernel: KernelDep, caller: Caller,
              is_admin: Annotated[bool, Body(embed=True)]) -> PrincipalPublic:
    """Promote a principal to administrator or demote it (administrators; never the last one)."""
    return kernel.set_admin(name, is_admin, principal=caller)


@router.get("/principals/{name}", operation_id="get_principal")
def get_principal(name: PrincipalName, kernel: KernelDep, caller: Caller) -> PrincipalPublic:
    """One principal: yourself, or anyone for administrators."""
    return kernel.get_principal(name, principal=caller)


@router.post("/principals/{name}/keys", status_code=201, operation_id="create_api_key")
def create_api_key(name: PrincipalName, kernel: KernelDep, caller: Caller,
                   body: Annotated[ApiKeyCreate | None, Body()] = None) -> ApiKeyIssued:
    """Issue an API key for a principal (yourself, or anyone for administrators); the key is shown only here."""
    return kernel.create_api_key(name, body, principal=caller)


@router.get("/keys", operation_id="list_api_keys")
def list_api_keys(kernel: KernelDep, caller: Caller,
                  principal: Annotated[str | None, Query(max_length=128, description="whose keys")] = None,
                  limit: Limit = 100, offset: Offset = 0) -> Page[ApiKeyPublic]:
    """List API keys without their secrets: your own, or anyone's for administrators."""
    keys = kernel.list_api_keys(principal=caller, owner=principal, limit=limit, offset=offset)
    return Page(items=keys, next=offset + limit if len(keys) == limit else None)


@router.delete("/keys/{key_id}", operation_id="revoke_api_key")
def revoke_api_key(key_id: Annotated[str, Path(max_length=64)], kernel: KernelDep, caller: Caller) -> ApiKeyPublic:
    """Revoke an API key at once (its owner or an administrator)."""
    return kernel.revoke_api_key(key_id, principal=caller)
