"""Fresh stores of either backend for the benchmarks: ``--backend sqlite`` (a file in a temporary folder) or
``--backend postgres`` (a database on a private PostgreSQL server started for the run, as the tests do, unless
``MEMCUBED_BENCH_PG_DSN`` names one; see ``bench.backends``)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.backends import _Postgres

__all__ = ["BACKENDS", "result_name", "store_locations"]

BACKENDS = ("sqlite", "postgres")


@contextmanager
def store_locations(backend: str) -> Iterator[Callable[[], str]]:
    """Yield a function returning the location of a new, empty store of ``backend``; all are removed at exit.

    Raises:
        ValueError: ``backend`` is not one of :data:`BACKENDS`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
    if backend == "postgres":
        pg = _Postgres()
        try:
            yield pg.database
        finally:
            pg.close()
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield lambda: str(Path(tmp) / f"{uuid.uuid4().hex}.db")


def result_name(name: str, backend: str) -> str:
    """The results file of benchmark ``name`` on ``backend`` (SQLite keeps the plain name)."""
    return name if backend == "sqlite" else f"{name}_{backend}"
