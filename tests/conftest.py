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

# The conformance suite ships inside the package; its asserts are rewritten like a test module's.
pytest.register_assert_rewrite("memcubed.testing.conformance")

from hypothesis import HealthCheck, settings  # noqa: E402

from memcubed.backends.embedders import TransformersEmbedder  # noqa: E402
from memcubed.backends.models import LocalTransformersLM  # noqa: E402
from memcubed.backends.models.packaged import cache_root  # noqa: E402
from memcubed.backends.sqlite.driver import connect  # noqa: E402
from memcubed.testing.conformance.fixtures import (  # noqa: E402
    OpenMc,
    clients,
    closing_all,
    embedder,
    lm,
    mc,
    pg_cluster,
)

__all__ = ["embedder", "lm", "mc", "pg_cluster"]  # the suite's fixtures, shared with every test here

settings.register_profile(
    "memcubed",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("memcubed")


# -- parallel runs (pytest-xdist) --------------------------------------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    """Under ``pytest -n N`` each worker computes on one core: one torch thread in the worker and in every process
    it starts (``memcubed worker``, ``memcubed serve``), so N workers share N cores instead of fighting over them."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        os.environ["MKL_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)
# -- end parallel runs --------------------------------------------------------------------------------------


_CONVERSIONS = ("models", "onnx", "static")
"""Cache kinds whose finished folders (the converted packaged model, ONNX exports and int8 copies, the static
embedder) are slow to build and depend only on their inputs: a test session reuses the user's."""


@pytest.fixture(scope="session", autouse=True)
def _cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A private memcubed cache for the session (``MEMCUBED_CACHE_DIR``, inherited by the processes tests start):
    tests neither read nor leave base answers, exports or int8 copies in the user's cache. The user's finished
    conversions are linked in (a link per folder, never written through: a missing or broken one is built here,
    beside the links), so a run does not convert them again."""
    before = os.environ.get("MEMCUBED_CACHE_DIR")
    user, private = cache_root(), tmp_path_factory.mktemp("cache")
    for kind in _CONVERSIONS:
        (private / kind).mkdir()
        done = sorted(user.joinpath(kind).iterdir()) if user.joinpath(kind).is_dir() else []
        for folder in done:
            if folder.is_dir() and not folder.name.startswith("."):  # a dot folder is a build under way
                (private / kind / folder.name).symlink_to(folder, target_is_directory=True)
    os.environ["MEMCUBED_CACHE_DIR"] = str(private)
    yield
    if before is None:
        del os.environ["MEMCUBED_CACHE_DIR"]
    else:
        os.environ["MEMCUBED_CACHE_DIR"] = before


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


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh SQLite file path."""
    return tmp_path / "memories.db"


@pytest.fixture
def open_mc(embedder: TransformersEmbedder) -> Iterator[OpenMc]:
    """Open clients on real files; ``embedder`` defaults to the session model, ``"none"`` gives lexical-only."""
    yield from clients(embedder)


@pytest.fixture
def location(db_path: Path) -> str:
    """Where a test's store lives (the conformance suite overrides it per backend)."""
    return str(db_path)


@pytest.fixture
def raw_db() -> Iterator[Callable[[Path], Any]]:
    """Open raw connections to a store file, closed at teardown.

    They come from memcubed's own driver on purpose: the stdlib ``sqlite3`` is a second SQLite
    library in the process, and closing its connection drops the POSIX locks the bundled one
    holds on the same file, so it reads stale pages (and could corrupt a live store).
    """
    yield from closing_all(lambda path: connect(str(path), vectors=False))


@pytest.fixture
def raw_counts(raw_db: Callable[[Path], Any]) -> Callable[[Path], dict[str, int]]:
    """Count rows straight from the SQLite file, bypassing memcubed."""

    def _counts(path: Path) -> dict[str, int]:
        conn = raw_db(path)
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("cubes", "cube_versions", "audit", "principals", "acl", "cube_tags")}

    return _counts


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
