"""What every group of Python API methods needs from ``Memcubed``: its principal, its kernel, input checks."""

from __future__ import annotations

from typing import Any

from memcubed.kernel import Kernel

__all__ = ["ClientBase"]


class ClientBase:
    """The base of each method group mixed into ``Memcubed`` (which provides the two methods)."""

    principal: str

    def _open(self) -> Kernel:
        """The kernel, or ClientClosed once the client was closed."""
        raise NotImplementedError

    def _checked(self, op: str, **fields: Any) -> Any:
        """``fields`` validated as operation ``op``'s input (a typed error otherwise)."""
        raise NotImplementedError
