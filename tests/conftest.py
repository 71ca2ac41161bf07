"""Shared fixtures: one real embedding model per session, real SQLite files under ``tmp_path``, and one
real PostgreSQL server per session (started here unless ``MEMCUBED_TEST_PG_DSN`` names one).

Every client a test opens through ``open_mc`` is closed at teardown (sqlite-utils' habit),
so no SQLite connection outlives its test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from tests.support.backends import PgCluster

import memcubed
from memcubed.backends.embedders import TransformersEmbedder
from memcubed.backends.models import LocalTransformersLM, make_language_model
from memcubed.backends.sqlite.driver import connect

settings.register_profile(
    "memcubed",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("memcubed")

OpenMc = Callable[..., memcubed.Memcubed]


@pytest.fixture(scope="session", autouse=True)
def _state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A private state folder for the session: PostgreSQL stores keep their audit key and head there
    (``kernel.seal``), and tests must not leave them in the user's home."""
    before = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    if before is None:
        del os.environ["XDG_STATE_HOME"]
    else:
        os.environ["XDG_STATE_HOME"] = before


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


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh SQLite file path."""
    return tmp_path / "memories.db"


@pytest.fixture
def open_mc(embedder: TransformersEmbedder) -> Iterator[OpenMc]:
    """Open clients on real files; ``embedder`` defaults to the session model, ``"none"`` gives lexical-only."""
    opened: list[memcubed.Memcubed] = []

    def _open(path: Path | str, *, embedder: Any = embedder, **kwargs: Any) -> memcubed.Memcubed:
        client = memcubed.open(path, embedder=embedder, **kwargs)
        opened.append(client)
        return client

    yield _open
    for client in opened:
        client.close()


@pytest.fixture
def location(db_path: Path) -> str:
    """Where a test's store lives (the conformance suite overrides it per backend)."""
    return str(db_path)


@pytest.fixture
def mc(open_mc: OpenMc, location: str) -> memcubed.Memcubed:
    """An admin client on a fresh store with the local embedder and principals alice, bob and carol."""
    client = open_mc(location)
    for name in ("alice", "bob", "carol"):
        client.create_principal(name)
    return client


@pytest.fixture
def raw_db() -> Iterator[Callable[[Path], Any]]:
    """Open raw connections to a store file, closed at teardown.

    They come from memcubed's own driver on purpose: the stdlib ``sqlite3`` is a second SQLite
    library in the process, and closing its connection drops the POSIX locks the bundled one
    holds on the same file, so it reads stale pages (and could corrupt a live store).
    """
    conns: list[Any] = []

    def _open(path: Path) -> Any:
        conn = connect(str(path), vectors=False)
        conns.append(conn)
        return conn

    yield _open
    for conn in conns:
        conn.close()


@pytest.fixture
def raw_counts(raw_db: Callable[[Path], Any]) -> Callable[[Path], dict[str, int]]:
    """Count rows straight from the SQLite file, bypassing memcubed."""

    def _counts(path: Path) -> dict[str, int]:
        conn = raw_db(path)
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("cubes", "cube_versions", "audit", "principals", "acl", "cube_tags")}

    return _counts


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
def tiny_lm(lm: LocalTransformersLM, tmp_path_factory: pytest.TempPathFactory) -> LocalTransformersLM:
    """A different, randomly initialised two-layer Llama with SmolLM2's tokenizer, loaded from a folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder: Path = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=lm.config.vocab_size, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return LocalTransformersLM(folder)
