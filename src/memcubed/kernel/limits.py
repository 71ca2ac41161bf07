"""The configured limits every interface gets, since the kernel enforces them: sizes, counts, pages, quotas.

Each check raises ``BudgetExceeded`` naming the setting, the size asked for and the limit, so that a
caller learns which knob it hit. The REST body limit is enforced earlier, at the edge
(``interfaces/rest/limits``), so that an oversized request is refused before it is parsed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from memcubed.backends.base import StorageBackend
from memcubed.errors import BudgetExceeded
from memcubed.settings import Settings

__all__ = ["check_batch", "check_content", "check_k", "check_page", "check_quota", "meta_bytes"]

_DOC_SLACK = 256 * 1024
"""Characters a cube's stored document may hold besides text and meta (source, tags, lineage): the bound that
lets ``check_quota`` skip summing sizes while an owner's cube count alone proves the byte quota holds."""


def meta_bytes(meta: Mapping[str, Any]) -> int:
    """The size of ``meta`` as the store serializes it (compact UTF-8 JSON)."""
    text = json.dumps(meta, separators=(",", ":"), ensure_ascii=False, default=str)
    return len(text.encode("utf-8", "surrogatepass"))  # a lone surrogate is the validator's to refuse


def check_content(settings: Settings, *, meta: Mapping[str, Any] | None, tags: Sequence[str] | None) -> None:
    """Refuse a cube's ``meta`` or ``tags`` beyond ``max_meta_bytes``, ``max_tags`` or ``max_tag_chars``.

    Raises:
        BudgetExceeded: a limit is exceeded (``details`` names the field, the size and the limit).
    """
    if meta is not None:
        size = meta_bytes(meta)
        if size > settings.max_meta_bytes:
            raise BudgetExceeded(f"meta is {size} bytes as JSON; the limit (max_meta_bytes) is"
                                 f" {settings.max_meta_bytes}", field="meta", size=size, limit=settings.max_meta_bytes)
    if tags is not None:
        if len(tags) > settings.max_tags:
            raise BudgetExceeded(f"{len(tags)} tags; the limit (max_tags) is {settings.max_tags}", field="tags",
                                 size=len(tags), limit=settings.max_tags)
        longest = max((len(tag) for tag in tags), default=0)
        if longest > settings.max_tag_chars:
            raise BudgetExceeded(f"a tag has {longest} characters; the limit (max_tag_chars) is"
                                 f" {settings.max_tag_chars}", field="tags", size=longest, limit=settings.max_tag_chars)


def check_batch(settings: Settings, size: int) -> None:
    """Refuse an ``add_many`` batch larger than ``max_batch``.

    Raises:
        BudgetExceeded: the batch is too large.
    """
    if size > settings.max_batch:
        raise BudgetExceeded(f"batch of {size} exceeds max_batch {settings.max_batch}", field="items", size=size,
                             limit=settings.max_batch)


def check_k(settings: Settings, k: int) -> None:
    """Refuse a search (or chat retrieval) asking for more than ``max_search_k`` hits.

    Raises:
        BudgetExceeded: ``k`` is too large.
    """
    if k > settings.max_search_k:
        raise BudgetExceeded(f"k={k} exceeds max_search_k {settings.max_search_k}", field="k", size=k,
                             limit=settings.max_search_k)


def check_page(settings: Settings, limit: int | None, *, field: str = "limit") -> None:
    """Refuse a page (history, audit, list) larger than ``max_page``.

    Raises:
        BudgetExceeded: ``limit`` is too large.
    """
    if limit is not None and limit > settings.max_page:
        raise BudgetExceeded(f"{field}={limit} exceeds max_page {settings.max_page}", field=field, size=limit,
                             limit=settings.max_page)


def check_quota(store: StorageBackend, settings: Settings, owner: str) -> None:
    """Refuse a write that leaves ``owner`` over ``quota_cubes`` or ``quota_bytes``.

    Call it inside the write transaction, after the write: what is counted is what would commit, and
    raising rolls the write back. Sizes are summed only when the cube count alone cannot prove the byte
    quota holds (every cube is bounded by the text, meta and document limits), so the common case costs
    one index-only count.

    Raises:
        BudgetExceeded: the owner would hold more cubes or stored characters than its quota.
    """
    if not settings.quota_cubes and not settings.quota_bytes:
        return
    largest = settings.max_text_chars + settings.max_meta_bytes + _DOC_SLACK
    cubes, _ = store.owner_usage(owner, chars=False)
    if settings.quota_cubes and cubes > settings.quota_cubes:
        raise BudgetExceeded(f"{owner!r} would own {cubes} cubes; the quota (quota_cubes) is {settings.quota_cubes}",
                             field="quota_cubes", principal=owner, size=cubes, limit=settings.quota_cubes)
    if settings.quota_bytes and cubes * largest > settings.quota_bytes:
        _, chars = store.owner_usage(owner)
        if chars > settings.quota_bytes:
            raise BudgetExceeded(f"{owner!r} would store {chars} characters; the quota (quota_bytes) is"
                                 f" {settings.quota_bytes}", field="quota_bytes", principal=owner, size=chars,
                                 limit=settings.quota_bytes)
