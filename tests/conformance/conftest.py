"""The conformance suite: every test here runs once per backend (``[sqlite]`` and ``[postgres]``).

Backends differ only in the ``backend`` fixture; tests never ask which one they run on, except
through the capabilities of ``RawDb`` (raw SQL access for counting and tampering).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.backends import BACKENDS, Backend, PostgresBackend, RawDb, SqliteBackend

import memcubed

OpenMc = Callable[..., memcubed.Memcubed]


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
def open_mc(backend: Backend, open_mc: OpenMc) -> OpenMc:
    """The root ``open_mc``, set up after ``backend`` so its clients close before the stores are removed."""
    return open_mc


@pytest.fixture
def raw_db(backend: Backend) -> Iterator[Callable[[str], RawDb]]:
    """Open raw connections to a store, closed at teardown."""
    conns: list[RawDb] = []

    def _open(where: str) -> RawDb:
        conn = backend.raw(where)
        conns.append(conn)
        return conn

    yield _open
    for conn in conns:
        conn.close()


@pytest.fixture
def raw_counts(raw_db: Callable[[str], RawDb]) -> Callable[[str], dict[str, int]]:
    """Count rows straight from the store, bypassing memcubed."""
    return lambda where: raw_db(where).counts()
