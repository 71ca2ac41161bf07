"""Store-level behaviour every backend shares: the embedder a store is bound to, transactions, error
mapping, visibility across connections, refusing a newer schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import memcubed
from memcubed import ConfigurationError, CubeState, StorageError
from memcubed.backends.embedders import TransformersEmbedder
from memcubed.backends.selection import open_backend

OpenMc = Callable[..., memcubed.Memcubed]


def test_embedder_mismatch_is_a_configuration_error(open_mc: OpenMc, location: str,
                                                    embedder: TransformersEmbedder) -> None:
    plain = open_mc(location, embedder="none")
    cube = plain.add("indexed without vectors")
    plain.close()
    with pytest.raises(ConfigurationError) as info:
        open_mc(location, embedder=embedder)
    assert info.value.code == "configuration_error"
    assert info.value.details == {"recorded": "none", "requested": f"{embedder.name}|{embedder.dim}"}
    assert open_mc(location, embedder="none").get(cube.id).text == "indexed without vectors"

def test_a_vector_store_cannot_be_opened_without_its_embedder(open_mc: OpenMc, location: str) -> None:
    open_mc(location).close()
    with pytest.raises(ConfigurationError):
        open_mc(location, embedder="none")

def test_nested_transactions_are_savepoints(location: str) -> None:
    store, _ = open_backend(location)
    try:
        with store.transaction():
            store.set_meta("outer", "1")
            with pytest.raises(RuntimeError), store.transaction():
                store.set_meta("inner", "1")
                raise RuntimeError("inner fails")
            store.set_meta("after", "1")
        assert (store.get_meta("outer"), store.get_meta("inner"), store.get_meta("after")) == ("1", None, "1")
        with pytest.raises(RuntimeError), store.transaction():
            store.set_meta("doomed", "1")
            with store.transaction():
                store.set_meta("doomed-inner", "1")
            raise RuntimeError("outer fails")
        assert (store.get_meta("doomed"), store.get_meta("doomed-inner")) == (None, None)
    finally:
        store.close()

def test_driver_errors_become_storage_errors(location: str) -> None:
    store, _ = open_backend(location)
    try:
        with pytest.raises(StorageError) as info:
            store._run("SELECT * FROM no_such_table")  # type: ignore[attr-defined]
        assert isinstance(info.value.__cause__, Exception)
        assert "no_such_table" in info.value.message
    finally:
        store.close()

def test_store_sees_commits_from_another_connection(open_mc: OpenMc, location: str) -> None:
    writer = open_mc(location, embedder="none")
    reader = open_mc(location, embedder="none")
    cube = writer.add("visible across connections")
    assert reader.get(cube.id).text == "visible across connections"
    writer.delete(cube.id)
    assert reader.get(cube.id, include_deleted=True).state is CubeState.DELETED


def test_a_newer_schema_is_refused(open_mc: OpenMc, location: str, raw_db: Callable[[str], Any]) -> None:
    open_mc(location, embedder="none").close()
    raw_db(location).execute("UPDATE schema_version SET version = version + 1")
    with pytest.raises(ConfigurationError) as info:
        open_mc(location, embedder="none")
    assert set(info.value.details) == {"schema_version"}
