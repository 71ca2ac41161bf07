"""Principals and keys: disable, enable, delete (a tombstone), promote and demote, key expiry and scope,
and refused calls audited as ``denied`` records that change nothing else."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

import memcubed
from memcubed import AccessDenied, AlreadyExists, AuthenticationFailed, Conflict, NotFound, ValidationError
from memcubed.backends._common import format_ts
from memcubed.testing.backends import RawDb


def test_disable_and_enable(mc: memcubed.Memcubed) -> None:
    alice = mc.as_principal("alice")
    cube = alice.add("alice's note")
    key = mc.create_api_key("alice").key
    assert mc.disable_principal("alice").disabled
    with pytest.raises(AccessDenied):
        alice.get(cube.id)
    with pytest.raises(AuthenticationFailed):
        mc.kernel.authenticate(key)
    assert mc.get(cube.id).owner == "alice"  # its cubes stay as they were
    assert not mc.enable_principal("alice").disabled
    assert alice.get(cube.id).text == "alice's note" and mc.kernel.authenticate(key).name == "alice"
    ops = [r.op for r in mc.audit()]
    assert ops.count("principal.disable") == 1 and ops.count("principal.enable") == 1


def test_delete_keeps_a_tombstone_owning_the_cubes(mc: memcubed.Memcubed) -> None:
    alice = mc.as_principal("alice")
    cube = alice.add("alice's diary")
    keys = [mc.create_api_key("alice").key for _ in range(2)]
    deleted = mc.delete_principal("alice")
    assert deleted.disabled and deleted.deleted_at is not None
    for key in keys:
        with pytest.raises(AuthenticationFailed):
            mc.kernel.authenticate(key)
    assert all(k.revoked_at is not None for k in mc.list_api_keys("alice"))
    assert mc.get(cube.id).owner == "alice"  # not reassigned
    with pytest.raises(AlreadyExists):  # nobody registered later under the name inherits the cubes
        mc.create_principal("alice")
    with pytest.raises(Conflict):
        mc.enable_principal("alice")
    record = mc.audit()[-1]
    assert record.op == "principal.delete" and len(record.details["revoked_keys"]) == 2
    assert mc.verify_audit().ok


def test_promote_demote_and_never_the_last_admin(mc: memcubed.Memcubed) -> None:
    with pytest.raises(Conflict):
        mc.set_admin("admin", False)
    for change in (mc.disable_principal, mc.delete_principal):
        with pytest.raises(Conflict):
            change("admin")
    bob = mc.as_principal("bob")
    with pytest.raises(AccessDenied):
        bob.set_admin("bob", True)  # nobody promotes themselves
    assert mc.set_admin("bob", True).is_admin
    assert bob.set_admin("admin", False).is_admin is False  # now bob is the other admin
    with pytest.raises(Conflict):
        bob.set_admin("bob", False)
    assert [r.details for r in bob.audit() if r.op == "principal.set_admin"] == [
        {"name": "bob", "is_admin": True}, {"name": "admin", "is_admin": False}]


def test_keys_expire_and_have_a_scope(mc: memcubed.Memcubed) -> None:
    soon = datetime.now(UTC) + timedelta(days=1)
    reader = mc.create_api_key("alice", scope="read", expires_at=soon)
    assert (reader.scope, reader.expires_at) == ("read", soon)
    assert mc.kernel.authenticate(reader.key, operation="search").name == "alice"
    for operation in ("add", "update", "create_api_key", "chat_completions"):
        with pytest.raises(AccessDenied):
            mc.kernel.authenticate(reader.key, operation=operation)
    writer = mc.create_api_key("alice", scope="write")
    assert mc.kernel.authenticate(writer.key, operation="update").name == "alice"
    with pytest.raises(AccessDenied):  # a write key cannot mint itself an admin-scoped one
        mc.kernel.authenticate(writer.key, operation="create_api_key")
    for bad in (datetime.now(UTC) - timedelta(seconds=1), datetime(2999, 1, 1)):
        with pytest.raises(ValidationError):
            mc.create_api_key("alice", expires_at=bad)
    denied = [r for r in mc.audit() if r.op == "denied"]
    assert [r.details["operation"] for r in denied] == ["add", "update", "create_api_key", "chat_completions",
                                                        "create_api_key"]
    assert all(r.principal == "alice" and r.details["scope"] in ("read", "write") for r in denied)


def test_an_expired_key_is_refused(mc: memcubed.Memcubed, raw_db: Callable[[str], RawDb], location: str) -> None:
    issued = mc.create_api_key("alice", expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert mc.kernel.authenticate(issued.key).name == "alice"
    # Time passes (moved straight in the store: no test waits an hour).
    past = format_ts(datetime.now(UTC) - timedelta(seconds=1))
    raw_db(location).execute("UPDATE api_keys SET expires_at = ? WHERE key_id = ?", (past, issued.key_id))
    with pytest.raises(AuthenticationFailed):
        mc.kernel.authenticate(issued.key)


def test_a_refused_call_writes_one_denied_record_and_nothing_else(mc: memcubed.Memcubed) -> None:
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    cube = alice.add("alice's plan")
    alice.share(cube.id, "bob", "read")
    before = mc.audit()
    with pytest.raises(AccessDenied):
        bob.update(cube.id, text="bob's plan")
    with pytest.raises(AccessDenied):
        bob.verify_audit()
    with pytest.raises(NotFound):  # unknown to bob entirely: not even a denied record names it
        mc.as_principal("carol").update(cube.id, text="x")
    new = mc.audit()[len(before):]
    assert [(r.op, r.principal, r.cube_id, r.details["operation"]) for r in new] == [
        ("denied", "bob", cube.id, "update"), ("denied", "bob", None, "verify_audit")]
    assert alice.get(cube.id).version == 1 and alice.get(cube.id).text == "alice's plan"
    assert mc.verify_audit().ok
