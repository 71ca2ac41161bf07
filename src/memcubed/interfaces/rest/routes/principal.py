"""Routes on principals' API keys written by hand: ``whoami`` (no operation of its own), ``create_api_key``
(the path names the key's owner, the body its other fields, and may be left out) and ``list_api_keys`` (its
query parameter ``principal`` is the input's ``owner``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.schemas.ops import PrincipalPublic
from memcubed.schemas.server import ApiKeyCreate, ApiKeyIssued, ApiKeyPublic, Page

__all__ = ["router"]

router = APIRouter(tags=["principals"], responses=ERROR_RESPONSES)

PrincipalName = Annotated[str, Path(max_length=128, description="the principal's name")]
Limit = Annotated[int, Query(ge=1, le=1000, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=2**31, description="items to skip")]


@router.get("/me", operation_id="whoami")
def whoami(kernel: KernelDep, caller: Caller) -> PrincipalPublic:
    """The principal the API key belongs to."""
    return kernel.get_principal(caller, principal=caller)


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
