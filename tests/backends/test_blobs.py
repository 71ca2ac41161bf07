"""The filesystem blob store: content addressing, atomic writes, corruption and absence."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memcubed import IntegrityError, NotFound, ValidationError
from memcubed.backends.blobs import FileBlobStore


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def test_put_get_roundtrip(blobs: FileBlobStore) -> None:
    data = b"\x00\x01safetensors payload\xff"
    digest = blobs.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert blobs.get(digest) == data
    assert blobs.exists(digest)


def test_content_addressed_path_and_dedup(blobs: FileBlobStore, tmp_path: Path) -> None:
    digest = blobs.put(b"same bytes")
    path = tmp_path / "blobs" / digest[:2] / digest[2:]
    assert path.read_bytes() == b"same bytes"
    before = path.stat()
    os.utime(path, (before.st_atime - 7200, before.st_mtime - 7200))  # written two hours ago
    assert blobs.put(b"same bytes") == digest
    after = path.stat()
    assert after.st_ino == before.st_ino  # the same file, not rewritten ...
    assert after.st_mtime >= before.st_mtime  # ... but its age restarts: gc's grace counts from the last put
    assert [(d, size) for d, _, size in blobs.iter_written()] == [(digest, len(b"same bytes"))]
    assert sorted(p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()) == [digest[2:]]
    assert blobs.put(b"other bytes") != digest


def test_empty_blob(blobs: FileBlobStore) -> None:
    assert blobs.get(blobs.put(b"")) == b""


def test_corrupted_blob_is_an_integrity_error_and_is_quarantined(blobs: FileBlobStore, tmp_path: Path) -> None:
    digest = blobs.put(b"original tensor bytes")
    path = tmp_path / "blobs" / digest[:2] / digest[2:]
    path.write_bytes(b"flipped tensor bytes")
    with pytest.raises(IntegrityError) as info:
        blobs.get(digest)
    assert info.value.code == "integrity_error"
    assert info.value.details["sha256"] == digest
    assert info.value.details["actual"] == hashlib.sha256(b"flipped tensor bytes").hexdigest()
    # Moved aside, kept for inspection, out of the digest namespace: the digest now reads as missing.
    moved = Path(info.value.details["quarantined"])
    assert moved.parent == tmp_path / "blobs" / "quarantine" and moved.read_bytes() == b"flipped tensor bytes"
    assert not path.exists() and not blobs.exists(digest) and list(blobs.iter_digests()) == []
    with pytest.raises(NotFound):
        blobs.get(digest)
    # The right bytes are stored afresh.
    assert blobs.put(b"original tensor bytes") == digest and blobs.get(digest) == b"original tensor bytes"


def test_put_replaces_a_corrupt_copy_it_was_never_asked_to_read(blobs: FileBlobStore, tmp_path: Path) -> None:
    digest = blobs.put(b"segment bytes")
    path = tmp_path / "blobs" / digest[:2] / digest[2:]
    path.write_bytes(b"segment bytez")  # same size, different bytes
    assert blobs.put(b"segment bytes") == digest
    assert path.read_bytes() == b"segment bytes"
    assert [p.read_bytes() for p in (tmp_path / "blobs" / "quarantine").iterdir()] == [b"segment bytez"]


def test_missing_blob_is_not_found(blobs: FileBlobStore) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(NotFound) as info:
        blobs.get(digest)
    assert info.value.details == {"sha256": digest}
    assert not blobs.exists(digest)


def test_delete_is_idempotent(blobs: FileBlobStore) -> None:
    digest = blobs.put(b"short lived")
    blobs.delete(digest)
    blobs.delete(digest)
    assert not blobs.exists(digest)
    with pytest.raises(NotFound):
        blobs.get(digest)


@pytest.mark.parametrize("digest", ["", "abc", "../" + "a" * 61, "A" * 64, "g" * 64, "a" * 65])
def test_malformed_digest_is_rejected(blobs: FileBlobStore, digest: str) -> None:
    for call in (blobs.get, blobs.exists, blobs.delete):
        with pytest.raises(ValidationError):
            call(digest)


def test_no_temp_files_are_left(blobs: FileBlobStore, tmp_path: Path) -> None:
    for i in range(5):
        blobs.put(bytes([i]) * 100)
    assert not [p for p in (tmp_path / "blobs").rglob(".tmp-*")]


@given(data=st.binary(max_size=2048))
def test_any_bytes_roundtrip(blobs: FileBlobStore, data: bytes) -> None:
    digest = blobs.put(data)
    assert blobs.get(digest) == data
    assert blobs.put(data) == digest
