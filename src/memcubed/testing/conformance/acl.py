"""Rights: what read, write, share and admin allow, who sees the ACL, and that revoke acts at once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import memcubed
from memcubed import AccessDenied, Grant, MemCube, NotFound, Right, UnknownPrincipal, ValidationError


@pytest.fixture
def note(mc: memcubed.Memcubed) -> MemCube:
    return mc.as_principal("alice").add("alice's shopping list: eggs, flour")


def _as(mc: memcubed.Memcubed, name: str) -> memcubed.Memcubed:
    return mc.as_principal(name)


def _allowed(call: Callable[[], object]) -> bool:
    try:
        call()
    except (AccessDenied, NotFound):  # NotFound: the caller cannot even read the cube
        return False
    return True


def _abilities(mc: memcubed.Memcubed, name: str, cube_id: str) -> dict[str, bool]:
    """Which operations ``name`` may run, checked with calls that fail fast or change nothing lasting."""
    who = _as(mc, name)
    return {
        "get": _allowed(lambda: who.get(cube_id)),
        "history": _allowed(lambda: who.history(cube_id)),
        "get_version": _allowed(lambda: who.get_version(cube_id, 1)),
        "audit": _allowed(lambda: who.audit(cube_id=cube_id)),
        "update": _allowed(lambda: who.update(cube_id, importance=0.5)),
        "share": _allowed(lambda: who.share(cube_id, "carol", Right.READ)),
        "share_admin": _allowed(lambda: who.share(cube_id, "carol", Right.ADMIN)),
    }


@pytest.mark.parametrize(
    ("right", "expected"),
    [
        (None, dict.fromkeys(("get", "history", "get_version", "audit", "update", "share", "share_admin"), False)),
        (Right.READ, {"get": True, "history": True, "get_version": True, "audit": True, "update": False,
                      "share": False, "share_admin": False}),
        (Right.WRITE, {"get": True, "history": True, "get_version": True, "audit": True, "update": True,
                       "share": False, "share_admin": False}),
        (Right.SHARE, {"get": True, "history": True, "get_version": True, "audit": True, "update": True,
                       "share": True, "share_admin": False}),
        (Right.ADMIN, dict.fromkeys(("get", "history", "get_version", "audit", "update", "share", "share_admin"),
                                    True)),
    ],
)
def test_each_right_allows_exactly_its_operations(
    mc: memcubed.Memcubed, note: MemCube, right: Right | None, expected: dict[str, bool]
) -> None:
    if right is not None:
        _as(mc, "alice").share(note.id, "bob", right)
    assert _abilities(mc, "bob", note.id) == expected


@pytest.mark.parametrize(("right", "may_delete"), [(Right.SHARE, False), (Right.ADMIN, True)])
def test_delete_and_forget_need_admin(mc: memcubed.Memcubed, note: MemCube, right: Right, may_delete: bool) -> None:
    _as(mc, "alice").share(note.id, "bob", right)
    bob = _as(mc, "bob")
    assert _allowed(lambda: bob.delete(note.id)) is may_delete
    assert _allowed(lambda: bob.forget(note.id)) is may_delete


def test_owner_and_admin_hold_every_right(mc: memcubed.Memcubed, note: MemCube) -> None:
    assert _abilities(mc, "alice", note.id) == dict.fromkeys(_abilities(mc, "admin", note.id), True)
    assert all(_abilities(mc, "admin", note.id).values())


def test_share_records_a_grant_without_a_content_version(mc: memcubed.Memcubed, note: MemCube) -> None:
    shared = _as(mc, "alice").share(note.id, "bob", "write")
    # ACL changes are versioned on their own: the content version (and all compiled from it) stays.
    assert (shared.version, shared.acl_version, shared.updated_at) == (1, 1, note.updated_at)
    assert shared.acl == [Grant(principal="bob", right=Right.WRITE, accepted=False)]  # pending until bob accepts
    again = _as(mc, "alice").share(note.id, "bob", "read")
    assert again.acl == [Grant(principal="bob", right=Right.READ, accepted=False)] and again.acl_version == 2
    record = mc.audit(cube_id=note.id)[-1]
    assert (record.op, record.version) == ("share", 1)
    assert {k: v for k, v in record.details.items() if k != "content"} == {"principal": "bob", "right": "read",
                                                                            "accepted": False, "acl_version": 2}
    assert [h.version for h in mc.history(note.id)] == [1]


def test_acl_is_shown_only_to_share_holders(mc: memcubed.Memcubed, note: MemCube) -> None:
    alice = _as(mc, "alice")
    alice.share(note.id, "bob", Right.WRITE)
    alice.share(note.id, "carol", Right.SHARE)
    assert _as(mc, "bob").get(note.id).acl == []
    assert _as(mc, "bob").update(note.id, importance=0.9).acl == []
    assert all(h.cube.acl == [] for h in _as(mc, "bob").history(note.id))
    assert [g.principal for g in _as(mc, "carol").get(note.id).acl] == ["bob", "carol"]
    assert [g.principal for g in alice.get(note.id).acl] == ["bob", "carol"]


def test_revoke_acts_at_once(mc: memcubed.Memcubed, note: MemCube) -> None:
    alice, bob = _as(mc, "alice"), _as(mc, "bob")
    alice.share(note.id, "bob", Right.WRITE)
    assert bob.get(note.id).text == note.text
    revoked = alice.revoke(note.id, "bob")
    assert revoked.acl == []
    assert (revoked.version, revoked.acl_version) == (1, 2)
    for call in (lambda: bob.get(note.id), lambda: bob.history(note.id), lambda: bob.update(note.id, importance=1.0),
                 lambda: bob.get_version(note.id, 1), lambda: bob.audit(cube_id=note.id)):
        with pytest.raises(NotFound):
            call()
    assert bob.search("shopping list eggs").hits == []
    assert mc.audit(cube_id=note.id)[-1].op == "revoke"


def test_revoke_without_a_grant_changes_nothing(mc: memcubed.Memcubed, note: MemCube) -> None:
    before = mc.audit()
    same = _as(mc, "alice").revoke(note.id, "bob")
    assert same.version == 1
    assert mc.audit() == before


def test_revoke_needs_share(mc: memcubed.Memcubed, note: MemCube) -> None:
    alice = _as(mc, "alice")
    alice.share(note.id, "bob", Right.WRITE)
    alice.share(note.id, "carol", Right.READ)
    with pytest.raises(AccessDenied):
        _as(mc, "bob").revoke(note.id, "carol")
    alice.share(note.id, "bob", Right.SHARE)
    _as(mc, "bob").revoke(note.id, "carol")
    with pytest.raises(NotFound):
        _as(mc, "carol").get(note.id)


def test_share_to_unknown_principal_or_owner(mc: memcubed.Memcubed, note: MemCube) -> None:
    alice = _as(mc, "alice")
    with pytest.raises(UnknownPrincipal) as info:
        alice.share(note.id, "nobody")
    assert info.value.code == "unknown_principal"
    with pytest.raises(ValidationError):
        alice.share(note.id, "alice")
    assert alice.get(note.id).version == 1


def test_read_grant_does_not_leak_other_cubes(mc: memcubed.Memcubed, note: MemCube) -> None:
    alice = _as(mc, "alice")
    other = alice.add("alice's other shopping list: milk")
    alice.share(note.id, "bob")
    assert [h.cube.id for h in _as(mc, "bob").search("shopping list", mode="lexical").hits] == [note.id]
    with pytest.raises(NotFound):
        _as(mc, "bob").get(other.id)


def test_share_right_cannot_demote_or_revoke_an_admin_grant(mc: memcubed.Memcubed) -> None:
    cube = mc.add("team plan")
    mc.share(cube.id, "alice", "share")
    mc.share(cube.id, "bob", "admin")
    alice = mc.as_principal("alice")
    with pytest.raises(memcubed.AccessDenied):
        alice.share(cube.id, "bob", "read")
    with pytest.raises(memcubed.AccessDenied):
        alice.revoke(cube.id, "bob")
    assert {(g.principal, g.right) for g in mc.get(cube.id).acl} == {
        ("alice", memcubed.Right.SHARE), ("bob", memcubed.Right.ADMIN)}
    alice.share(cube.id, "carol", "write")  # a share holder still manages non-admin grants
    alice.revoke(cube.id, "carol")
    mc.as_principal("bob").revoke(cube.id, "alice")  # an admin may remove a share grant
    assert [g.principal for g in mc.get(cube.id).acl] == ["bob"]


def test_search_never_matches_through_a_neighbour_the_reader_cannot_read(mc: memcubed.Memcubed) -> None:
    """A turn's index context holds the preceding turn only when both have the same readers."""
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    alice.add("my locker code is quokka", source={"uri": "chat-1"})
    mine = bob.add("noted", source={"uri": "chat-1"})
    assert bob.search("quokka", mode="lexical").hits == []  # another owner's turn is not context
    private = alice.add("the vault opens with wombat", source={"uri": "chat-2"})
    reply = alice.add("understood", source={"uri": "chat-2"})
    assert [h.cube.id for h in alice.search("wombat", mode="lexical").hits] == [private.id, reply.id]
    alice.share(reply.id, "bob", "read")  # bob may read the reply, not what it answers
    assert bob.search("wombat", mode="lexical").hits == []
    assert [h.cube.id for h in alice.search("wombat", mode="lexical").hits] == [private.id]
    alice.share(private.id, "bob", "read")  # same readers again: the context comes back
    assert [h.cube.id for h in bob.search("wombat", mode="lexical").hits] == [private.id, reply.id]
    alice.revoke(private.id, "bob")
    assert bob.search("wombat", mode="lexical").hits == []
    assert mine.owner == "bob"
