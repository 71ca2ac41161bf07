"""Both blob stores quarantine a blob that fails its hash, so the right bytes can be stored again.

The PostgreSQL store keeps blobs in a table: the tampering goes through a raw connection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from memcubed import IntegrityError, NotFound
from memcubed.backends.base import BlobStore
from memcubed.backends.selection import open_backend
from memcubed.testing.backends import PgCluster, PostgresBackend


@pytest.fixture
def pg(pg_cluster: PgCluster) -> Iterator[tuple[BlobStore, PostgresBackend, str]]:
    backend = PostgresBackend(pg_cluster)
    location = backend.location()
    store, blobs = open_backend(location)
    yield blobs, backend, location
    store.close()
    backend.cleanup()


def test_a_tampered_postgres_blob_is_quarantined_and_stored_again(pg: tuple[BlobStore, PostgresBackend, str]) -> None:
    blobs, backend, location = pg
    digest = blobs.put(b"original tensor bytes")
    raw = backend.raw(location)
    try:
        raw.execute("UPDATE blobs SET data = ? WHERE digest = ?", (b"flipped tensor bytes", digest))
        with pytest.raises(IntegrityError) as info:
            blobs.get(digest)
        assert info.value.details["actual"] == hashlib.sha256(b"flipped tensor bytes").hexdigest()
        assert info.value.details["quarantined"].startswith(f"quarantine/{digest}/")
        assert not blobs.exists(digest) and list(blobs.iter_digests()) == []
        with pytest.raises(NotFound):
            blobs.get(digest)
        kept = raw.execute("SELECT data FROM blobs WHERE digest = ?", (info.value.details["quarantined"],)).fetchone()
        assert bytes(kept[0]) == b"flipped tensor bytes"
        assert blobs.put(b"original tensor bytes") == digest and blobs.get(digest) == b"original tensor bytes"

        # A corrupt row that nobody read is replaced by the next put of the right bytes.
        raw.execute("UPDATE blobs SET data = ? WHERE digest = ?", (b"flipped again", digest))
        assert blobs.put(b"original tensor bytes") == digest and blobs.get(digest) == b"original tensor bytes"
        assert list(blobs.iter_digests()) == [digest]
    finally:
        raw.close()
