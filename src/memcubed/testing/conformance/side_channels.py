"""Side channels: a cube's audit trail and access statistics are for who may administer it, and provenance
and lifecycle changes need admin, content changes only write."""

from __future__ import annotations

import pytest

import memcubed
from memcubed import AccessDenied, NotFound, Right


@pytest.fixture
def team(mc: memcubed.Memcubed) -> tuple[memcubed.Memcubed, memcubed.Memcubed, memcubed.Memcubed, str]:
    """Alice's cube, shared read with bob and write with carol; carol has changed it once."""
    alice, bob, carol = (mc.as_principal(n) for n in ("alice", "bob", "carol"))
    cube = alice.add("quarterly plan: hire two engineers", source={"uri": "doc://plan", "ref": "p1"})
    alice.share(cube.id, "bob", Right.READ)
    alice.share(cube.id, "carol", Right.WRITE)
    carol.update(cube.id, importance=0.9)
    return alice, bob, carol, cube.id


def test_a_cubes_audit_trail_is_for_its_administrators(
    mc: memcubed.Memcubed, team: tuple[memcubed.Memcubed, memcubed.Memcubed, memcubed.Memcubed, str]
) -> None:
    alice, bob, carol, cube_id = team
    assert [r.op for r in alice.audit(cube_id=cube_id)] == ["add", "share", "share", "update"]
    assert [r.op for r in mc.audit(cube_id=cube_id)] == ["add", "share", "share", "update"]
    # A reader or writer sees only the records of what they did: never who else holds which right.
    assert bob.audit(cube_id=cube_id) == []
    assert [(r.op, r.principal) for r in carol.audit(cube_id=cube_id)] == [("update", "carol")]
    assert "bob" not in str(carol.audit(cube_id=cube_id))
    alice.share(cube_id, "bob", Right.ADMIN)
    assert [r.op for r in bob.audit(cube_id=cube_id)][:3] == ["add", "share", "share"]
    with pytest.raises(NotFound):
        _stranger(mc).audit(cube_id=cube_id)


def _stranger(mc: memcubed.Memcubed) -> memcubed.Memcubed:
    if "eve" not in [p.name for p in mc.principals()]:
        mc.create_principal("eve")
    return mc.as_principal("eve")


def test_stats_are_shown_only_to_administrators(
    mc: memcubed.Memcubed, team: tuple[memcubed.Memcubed, memcubed.Memcubed, memcubed.Memcubed, str]
) -> None:
    alice, bob, carol, cube_id = team
    for _ in range(3):
        bob.get(cube_id)
    mc.kernel.flush_events()
    assert alice.get(cube_id).stats.access_count >= 3
    assert mc.get(cube_id).stats.access_count >= 3
    for who in (bob, carol):
        seen = who.get(cube_id)
        assert (seen.stats.access_count, seen.stats.last_access, seen.stats.hotness) == (0, None, 0.0)
        assert all(h.cube.stats.access_count == 0 for h in who.search("quarterly plan hire").hits)
        assert all(v.cube.stats.last_access is None for v in who.history(cube_id))


def test_provenance_and_lifecycle_need_admin(
    mc: memcubed.Memcubed, team: tuple[memcubed.Memcubed, memcubed.Memcubed, memcubed.Memcubed, str]
) -> None:
    alice, _, carol, cube_id = team
    before = alice.get(cube_id)
    with pytest.raises(AccessDenied):
        carol.update(cube_id, source={"uri": "doc://forged", "ref": "x"})
    with pytest.raises(AccessDenied):
        carol.kernel.validate_call("update", {"cube_id": cube_id, "change": {"source": {"uri": "doc://forged"}}},
                                   principal="carol")
    with pytest.raises(AccessDenied):
        carol.archive(cube_id)
    after = alice.get(cube_id)
    assert (after.version, after.source, after.state) == (before.version, before.source, before.state)
    edited = carol.update(cube_id, text="quarterly plan: hire three engineers", tags=["plan"], meta={"q": 3},
                          importance=0.5)
    assert edited.version == before.version + 1 and edited.source == before.source
    moved = alice.update(cube_id, source={"uri": "doc://plan-v2", "ref": "p1"})
    assert moved.source.uri == "doc://plan-v2"
