"""The kernel's ``list_cubes``: page through the cubes of a namespace that the principal may read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memcubed.backends.base import SearchScope
from memcubed.cube.model import MemCube
from memcubed.kernel import limits
from memcubed.kernel.base import KernelBase
from memcubed.kernel.validation import parse
from memcubed.schemas.operation import ListCubesInput

__all__ = ["ListOps"]


class ListOps(KernelBase):
    """Listing cubes, with the same rights and filters as ``search`` applied inside the query."""

    def list_cubes(self, request: ListCubesInput | Mapping[str, Any] | None = None, *,
                   principal: str) -> list[MemCube]:
        """Return a page of the cubes in ``request.namespace`` the principal may read, newest first.

        ``filters`` are search filters (active cubes only unless ``states`` says otherwise). Listing is
        not a use of the cubes: it records no access.

        Raises:
            ValidationError: bad filters or page bounds.
            BudgetExceeded: ``limit`` is over ``max_page``.
        """
        actor = self._actor(principal)
        req = parse(ListCubesInput, dict(request) if isinstance(request, Mapping) else request or {})
        limits.check_page(self.settings, req.limit)
        scope = SearchScope(principal=actor.name, is_admin=actor.is_admin, namespace=req.namespace,
                            filters=req.filters)
        return [self._present(c, actor) for c in self.store.list_cubes(scope, limit=req.limit, offset=req.offset)]
