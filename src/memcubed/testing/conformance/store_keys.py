"""API-key storage: only hashes are kept, revocation keeps its first time, ids are unique."""

from __future__ import annotations

from datetime import timedelta

import pytest

from memcubed import AlreadyExists
from memcubed.backends.selection import open_backend
from memcubed.kernel.base import utcnow
from memcubed.schemas.server import ApiKeyRecord


def test_api_keys_round_trip_and_revoke_once(location: str) -> None:
    store, _ = open_backend(location)
    try:
        now = utcnow()
        first = ApiKeyRecord(key_id="k1", principal="alice", secret_hash="a" * 64, label="laptop", created_at=now)
        second = ApiKeyRecord(key_id="k2", principal="bob", secret_hash="b" * 64,
                              created_at=now + timedelta(seconds=1))
        with store.transaction():
            store.insert_api_key(first)
            store.insert_api_key(second)
        with pytest.raises(AlreadyExists), store.transaction():
            store.insert_api_key(first)
        assert store.get_api_key("k1") == first and store.get_api_key("nope") is None
        assert [k.key_id for k in store.list_api_keys()] == ["k1", "k2"]
        assert [k.key_id for k in store.list_api_keys("bob")] == ["k2"]
        with store.transaction():
            store.revoke_api_key("k1", now + timedelta(minutes=1))
            store.revoke_api_key("k1", now + timedelta(minutes=2))
        revoked = store.get_api_key("k1")
        assert revoked is not None and revoked.revoked_at == now + timedelta(minutes=1)
        assert "a" * 64 not in repr(revoked)
    finally:
        store.close()
