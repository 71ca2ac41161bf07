"""The Python API's working set methods (issue 14, item 3), mixed into ``Memcubed``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memcubed.kernel import Kernel
from memcubed.kernel.types import KVLanguageModel, LanguageModel
from memcubed.schemas.workset import WorkingSet

__all__ = ["WorkingSetClient"]


class WorkingSetClient:
    """``set_working_set``, ``working_set`` and ``clear_working_set`` for the client's principal."""

    kernel: Kernel
    principal: str

    def _open(self) -> Kernel:  # Memcubed's: the kernel, unless the client is closed
        raise NotImplementedError

    def _checked(self, op: str, **fields: Any) -> Any:  # Memcubed's: validate with the operation's input schema
        raise NotImplementedError

    def set_working_set(self, cube_ids: Sequence[str] | None = None, *, namespace: str = "default",
                        lm: KVLanguageModel | LanguageModel | None = None, model: str | None = None) -> WorkingSet:
        """Make ``cube_ids`` (or, omitted, the namespace's hottest memories under budget) your working set of
        ``namespace``: one exact KV prefix for ``lm`` (or the configured ``model``) that chat puts first."""
        listed = list(cube_ids) if isinstance(cube_ids, list | tuple) else cube_ids  # a lone string is refused
        self._checked("set_working_set", namespace=namespace, cube_ids=listed, model=model)
        return self._open().set_working_set(namespace, cube_ids, principal=self.principal,
                                            lm=lm or self.kernel.models.get(model))

    def working_set(self, *, namespace: str = "default") -> WorkingSet:
        """Your working set of ``namespace`` (``cube`` None when there is none) and whether chat serves it now."""
        self._checked("working_set", namespace=namespace)
        return self._open().working_set(namespace, principal=self.principal)

    def clear_working_set(self, *, namespace: str = "default") -> WorkingSet:
        """Drop your working set of ``namespace`` (its cube is archived)."""
        self._checked("clear_working_set", namespace=namespace)
        return self._open().clear_working_set(namespace, principal=self.principal)
