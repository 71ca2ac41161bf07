"""The fixtures the conformance suite runs on: every test of the suite runs once per backend.

A backend joins the suite by providing a ``backend`` fixture (a :class:`~memcubed.testing.backends.Backend`:
where a fresh store lives, and raw access to it). The default one here runs over ``BACKENDS``
(``[sqlite]`` and ``[postgres]``, the latter on a real server this session starts, see ``pg_cluster``).
Tests never ask which backend they run on, except through the capabilities of ``RawDb``.

Use: ``from memcubed.testing.conformance.fixtures import *`` in the ``conftest.py`` next to the suite's
modules (``from memcubed.testing.conformance.acl import *`` in a test module), then override
``backend`` to add another store.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar

import pytest

import memcubed
from memcubed.backends.embedders import TransformersEmbedder
from memcubed.backends.models import LocalTransformersLM, make_language_model
from memcubed.testing.backends import BACKENDS, Backend, PgCluster, PostgresBackend, RawDb, SqliteBackend

__all__ = ["OpenMc", "backend", "clients", "closing_all", "embedder", "lexical", "lm", "location", "mc", "open_mc",
           "pg_cluster", "raw_counts", "raw_db"]

OpenMc = Callable[..., memcubed.Memcubed]
"""Opens a client on a store location; every client it opened is closed at teardown."""


class _Closable(Protocol):
    def close(self) -> object: ...


_P = ParamSpec("_P")
_C = TypeVar("_C", bound=_Closable)


@pytest.fixture(scope="session")
def embedder() -> TransformersEmbedder:
    """The packaged all-MiniLM-L6-v2, loaded once and warmed up (the first forward pass is slow).

    One torch thread: on a small shared machine, OpenMP workers waiting for a busy core turn a
    7 ms embedding into 500 ms; the vectors are the same.
    """
    import torch

    torch.set_num_threads(1)
    model = TransformersEmbedder()
    model.embed(["warm up"])
    return model


@pytest.fixture(scope="session")
def lm() -> LocalTransformersLM:
    """The packaged SmolLM2-135M-Instruct in fp32, shared by every test that asks (one torch thread:
    the machine is small and shared, and fp32 results do not depend on it beyond 1e-6)."""
    import torch

    torch.set_num_threads(1)
    model = make_language_model("local")
    assert isinstance(model, LocalTransformersLM)
    return model


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A real PostgreSQL server with pgvector and a migrated template database.

    ``MEMCUBED_TEST_PG_DSN`` (a ``postgresql://`` URI of a role that may create databases) points the
    tests at an existing server; otherwise a private server starts in a temporary folder and is
    removed at the end of the session. Started only when a test needs it.
    """
    from memcubed.backends.postgres.embedded import EmbeddedServer

    given = os.environ.get("MEMCUBED_TEST_PG_DSN")
    server = None if given else EmbeddedServer(durable=False)
    cluster = PgCluster(given or server.dsn)  # type: ignore[union-attr]
    try:
        yield cluster
    finally:
        cluster.close()
        if server is not None:
            server.stop()


def closing_all(open_one: Callable[_P, _C]) -> Iterator[Callable[_P, _C]]:
    """The body of a fixture that opens things: yields ``open_one`` remembering what it opened, then closes
    each of those, oldest first."""
    opened: list[_C] = []

    def _open(*args: _P.args, **kwargs: _P.kwargs) -> _C:
        thing = open_one(*args, **kwargs)
        opened.append(thing)
        return thing

    try:
        yield _open
    finally:
        _close_each(opened)


def _close_each(things: list[Any]) -> None:
    """Close every thing, oldest first, even when an earlier one fails to close (that error is raised last)."""
    if things:
        try:
            things[0].close()
        finally:
            _close_each(things[1:])


def clients(embedder: Any) -> Iterator[OpenMc]:
    """The body of an ``open_mc`` fixture: yields the opener, then closes every client it opened."""

    def _open(path: Path | str, *, embedder: Any = embedder, **kwargs: Any) -> memcubed.Memcubed:
        return memcubed.open(path, embedder=embedder, **kwargs)

    yield from closing_all(_open)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Fresh stores on one backend, removed after the test."""
    chosen: Backend = (SqliteBackend(tmp_path) if request.param == "sqlite"
                       else PostgresBackend(request.getfixturevalue("pg_cluster")))
    yield chosen
    chosen.cleanup()


@pytest.fixture
def location(backend: Backend) -> str:
    """Where this test's store lives: a SQLite file path or a PostgreSQL DSN."""
    return backend.location()


@pytest.fixture
def open_mc(backend: Backend, embedder: TransformersEmbedder) -> Iterator[OpenMc]:
    """Open clients (``embedder`` defaults to the session model, ``"none"`` gives lexical-only); set up after
    ``backend`` so that they close before its stores are removed."""
    yield from clients(embedder)


@pytest.fixture
def mc(open_mc: OpenMc, location: str) -> memcubed.Memcubed:
    """An admin client on a fresh store with the local embedder and principals alice, bob and carol."""
    client = open_mc(location)
    for name in ("alice", "bob", "carol"):
        client.create_principal(name)
    return client


@pytest.fixture
def lexical(open_mc: OpenMc, location: str) -> memcubed.Memcubed:
    """An admin client on a fresh store with no embedder (only the full-text index finds and ranks) and
    principals alice and bob; a module that wants more (a text stage on) overrides it on top of this one."""
    client = open_mc(location, embedder="none")
    for name in ("alice", "bob"):
        client.create_principal(name)
    return client


@pytest.fixture
def raw_db(backend: Backend) -> Iterator[Callable[[str], RawDb]]:
    """Open raw connections to a store, closed at teardown."""
    yield from closing_all(backend.raw)


@pytest.fixture
def raw_counts(raw_db: Callable[[str], RawDb]) -> Callable[[str], dict[str, int]]:
    """Count rows straight from the store, bypassing memcubed."""
    return lambda where: raw_db(where).counts()
