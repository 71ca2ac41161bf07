"""A SQLite store's files are private to their owner, and nothing is created where nobody asked for it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

import memcubed
from memcubed import StoreNotFound
from memcubed.backends.blobs import FileBlobStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_store_and_its_wal_and_blob_folders_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "private.db"
    with memcubed.open(path, embedder="none") as mc:
        mc.add("a private memory")
        digest = mc.kernel.blobs.put(b"tensor bytes")
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(p.exists() for p in files)
        assert [_mode(p) for p in files] == [0o600] * 3
        blobs = Path(f"{path}.blobs")
        assert _mode(blobs) == 0o700 and _mode(blobs / digest[:2]) == 0o700
        assert _mode(blobs / digest[:2] / digest[2:]) == 0o600


def test_blob_folders_are_owner_only_even_under_a_permissive_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0)
    try:
        store = FileBlobStore(tmp_path / "blobs")
        digest = store.put(b"x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "blobs") == 0o700 and _mode(tmp_path / "blobs" / digest[:2]) == 0o700


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    memcubed.open(path, embedder="none").close()
    path.chmod(0o640)  # the operator's choice is kept
    memcubed.open(path, embedder="none").close()
    assert _mode(path) == 0o640


def test_a_missing_folder_is_never_created(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFound, match="does not exist"):
        memcubed.open(tmp_path / "typo" / "memories.db", embedder="none")
    assert not (tmp_path / "typo").exists()


def test_create_false_refuses_a_missing_store_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(StoreNotFound) as raised:
        memcubed.open(path, embedder="none", create=False)
    assert raised.value.code == "store_not_found" and isinstance(raised.value, memcubed.NotFound)
    assert list(tmp_path.iterdir()) == []
    memcubed.open(path, embedder="none").close()  # the library default creates it
    memcubed.open(path, embedder="none", create=False).close()  # and then it exists
