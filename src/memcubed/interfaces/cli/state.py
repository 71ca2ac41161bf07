"""Global CLI options and the lazily opened client."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import typer

from memcubed.errors import MemcubedError
from memcubed.interfaces.api import Memcubed, open_store
from memcubed.interfaces.cli.errors import exit_code
from memcubed.settings import Settings

__all__ = ["CliState", "handle_errors", "state"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class CliState:
    """Options given before the command (``--db``, ``--principal``, ``--embedder``, ``--json``)."""

    db: str | None = None
    principal: str | None = None
    embedder: str | None = None
    json: bool = False
    _client: Memcubed | None = field(default=None, repr=False)

    def client(self, *, create: bool = False) -> Memcubed:
        """Open the store on first use; only ``create`` (``init``, ``serve``, ``demo``) makes a missing one.

        Raises:
            StoreNotFound: there is no store at ``--db`` and ``create`` is False (a mistyped path must not
                answer "0 hits" from a new, empty store).
        """
        if self._client is None:
            self._client = open_store(self.db, principal=self.principal, embedder=self.embedder,
                                      settings=Settings(), create=create)
        return self._client

    def close(self) -> None:
        """Close the store if it was opened."""
        if self._client is not None:
            self._client.close()
            self._client = None


def state(ctx: typer.Context) -> CliState:
    """Return the CliState of the running command."""
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a MemcubedError into a message on stderr and the mapped exit code.

    The wrapped command takes the Typer context as ``ctx``.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except MemcubedError as exc:
            ctx = kwargs.get("ctx", args[0] if args else None)
            root = ctx.find_root().obj if hasattr(ctx, "find_root") else None
            as_json = root.json if isinstance(root, CliState) else False
            body: dict[str, Any] = {"error": exc.to_dict()}
            message = json.dumps(body, default=str) if as_json else f"error [{exc.code}]: {exc.message}"
            print(message, file=sys.stderr)
            raise typer.Exit(exit_code(exc)) from exc

    return wrapper
