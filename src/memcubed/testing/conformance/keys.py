"""API keys in the kernel: issue, authenticate, revoke, list; secrets shown once and stored hashed."""

from __future__ import annotations

import hashlib

import pytest

import memcubed
from memcubed import AccessDenied, AuthenticationFailed, NotFound, UnknownPrincipal, ValidationError


@pytest.fixture
def mc(lexical: memcubed.Memcubed) -> memcubed.Memcubed:
    """The suite's lexical-only client (principals alice and bob): keys need no embedder."""
    return lexical


def test_issue_and_authenticate(mc: memcubed.Memcubed) -> None:
    issued = mc.create_api_key("alice", label="laptop")
    assert issued.key.startswith(f"mck_{issued.key_id}_") and issued.principal == "alice"
    assert mc.kernel.authenticate(issued.key).name == "alice"
    stored = mc.kernel.store.get_api_key(issued.key_id)
    assert stored is not None and issued.key.split("_", 2)[2] not in stored.model_dump_json()
    assert stored.secret_hash == hashlib.sha256(issued.key.split("_", 2)[2].encode()).hexdigest()
    audit = [r for r in mc.audit() if r.op == "key.create"]
    assert audit[-1].details == {"key_id": issued.key_id, "principal": "alice", "label": "laptop", "scope": "admin",
                                 "expires_at": None}
    assert issued.key not in str(mc.audit())


@pytest.mark.parametrize("token", ["", "nonsense", "mck_zz_" + "A" * 43, "mck_0123456789abcdef_" + "A" * 43,
                                   "mck_0123456789abcdef_short", None, 42])
def test_bad_tokens_fail_alike(mc: memcubed.Memcubed, token: object) -> None:
    with pytest.raises(AuthenticationFailed, match="invalid, revoked, expired or unknown API key"):
        mc.kernel.authenticate(token)  # type: ignore[arg-type]


def test_wrong_secret_and_revoked_key(mc: memcubed.Memcubed) -> None:
    issued = mc.create_api_key("alice")
    forged = issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B")
    with pytest.raises(AuthenticationFailed):
        mc.kernel.authenticate(forged)
    alice = mc.as_principal("alice")
    revoked = alice.revoke_api_key(issued.key_id)
    assert revoked.revoked_at is not None
    with pytest.raises(AuthenticationFailed):
        mc.kernel.authenticate(issued.key)
    # Revoking again changes nothing and writes no second audit record.
    before = len(mc.audit())
    assert alice.revoke_api_key(issued.key_id).revoked_at == revoked.revoked_at
    assert len(mc.audit()) == before
    assert [r.details["key_id"] for r in mc.audit() if r.op == "key.revoke"] == [issued.key_id]


def test_disabled_principal_cannot_authenticate(mc: memcubed.Memcubed) -> None:
    issued = mc.create_api_key("bob")
    with mc.kernel.store.transaction():
        mc.kernel.store._run("UPDATE principals SET disabled = 1 WHERE name = 'bob'")  # type: ignore[attr-defined]
    with pytest.raises(AuthenticationFailed):
        mc.kernel.authenticate(issued.key)


def test_rights_on_keys(mc: memcubed.Memcubed) -> None:
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    own = alice.create_api_key()
    with pytest.raises(AccessDenied):
        alice.create_api_key("bob")
    with pytest.raises(AccessDenied):
        bob.revoke_api_key(own.key_id)
    with pytest.raises(AccessDenied):
        bob.api_keys("alice")
    with pytest.raises(UnknownPrincipal):
        mc.create_api_key("nobody")
    with pytest.raises(NotFound):
        alice.revoke_api_key("0123456789abcdef")
    with pytest.raises(NotFound):
        alice.revoke_api_key("../etc")
    with pytest.raises(ValidationError):
        alice.create_api_key(label="bad\nlabel")
    with pytest.raises(ValidationError):
        alice.api_keys(limit=0)
    assert mc.revoke_api_key(own.key_id).principal == "alice"  # administrators may


def test_listing_never_shows_secrets(mc: memcubed.Memcubed) -> None:
    alice = mc.as_principal("alice")
    keys = [alice.create_api_key(label=str(n)) for n in range(3)]
    mc.create_api_key("bob")
    mine = alice.api_keys()
    assert [k.key_id for k in mine] == [k.key_id for k in keys]
    assert all(not hasattr(k, "key") and not hasattr(k, "secret_hash") for k in mine)
    assert [k.key_id for k in alice.api_keys(limit=2, offset=1)] == [k.key_id for k in keys[1:]]
    assert {k.principal for k in mc.api_keys()} == {"alice", "bob"}
    assert {k.principal for k in mc.api_keys("bob")} == {"bob"}


def test_principal_lookup_and_pages(mc: memcubed.Memcubed) -> None:
    assert mc.as_principal("alice").kernel.get_principal("alice", principal="alice").name == "alice"
    assert mc.kernel.get_principal("bob", principal="admin").name == "bob"
    with pytest.raises(AccessDenied):
        mc.kernel.get_principal("bob", principal="alice")
    with pytest.raises(UnknownPrincipal):
        mc.kernel.get_principal("nobody", principal="admin")
    assert [p.name for p in mc.principals(limit=2, offset=1)] == ["alice", "bob"]
    with pytest.raises(ValidationError):
        mc.principals(limit=0)


def test_reset_admin_revokes_every_live_admin_key_and_issues_one(mc: memcubed.Memcubed) -> None:
    old = [mc.create_api_key("admin", label=str(i)) for i in range(2)]
    revoked = mc.create_api_key("admin", label="revoked")
    mc.revoke_api_key(revoked.key_id)
    alices = mc.create_api_key("alice")
    before = len(mc.audit())
    issued = mc.kernel.reset_admin_key(principal="admin")
    assert issued.principal == "admin" and issued.label == "reset-admin"
    assert mc.kernel.authenticate(issued.key).name == "admin"
    for key in (*old, revoked):
        with pytest.raises(AuthenticationFailed):
            mc.kernel.authenticate(key.key)
    assert mc.kernel.authenticate(alices.key).name == "alice"  # other principals' keys are untouched
    records = mc.audit()[before:]
    assert [r.op for r in records] == ["key.revoke", "key.revoke", "key.create"]
    assert {r.details["key_id"] for r in records[:2]} == {k.key_id for k in old}
    assert issued.key not in str(records)
    assert mc.verify_audit().ok


def test_only_administrators_reset_the_admin_key(mc: memcubed.Memcubed) -> None:
    kept = mc.create_api_key("admin")
    before = len(mc.audit())
    with pytest.raises(AccessDenied):
        mc.kernel.reset_admin_key(principal="alice")
    assert mc.kernel.authenticate(kept.key).name == "admin"
    assert [(r.op, r.principal, r.details["operation"]) for r in mc.audit()[before:]] == [
        ("denied", "alice", "reset_admin_key")]
