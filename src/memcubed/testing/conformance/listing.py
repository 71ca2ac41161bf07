"""``list_cubes`` on every backend: rights and filters inside the query, newest first, paged."""

from __future__ import annotations

import pytest

import memcubed
from memcubed import ValidationError


def test_list_cubes_shows_only_what_the_principal_may_read(mc: memcubed.Memcubed) -> None:
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    mine = [alice.add(f"alice note {i}", tags=["even"] if i % 2 == 0 else []).id for i in range(4)]
    theirs = bob.add("bob's secret")
    shared = bob.add("bob shares this")
    bob.share(shared.id, "alice")
    bob.add("elsewhere", namespace="other")
    assert [c.id for c in alice.list_cubes()] == [shared.id, *mine[::-1]]
    assert theirs.id not in {c.id for c in alice.list_cubes(limit=1000)}
    assert [c.id for c in alice.list_cubes(limit=2, offset=1)] == mine[::-1][:2]
    assert alice.list_cubes(offset=50) == []
    assert {c.id for c in alice.list_cubes(filters={"tags": ["even"]})} == {mine[0], mine[2]}
    assert [c.id for c in alice.list_cubes(filters={"owner": "bob"})] == [shared.id]
    assert [c.text for c in bob.list_cubes(namespace="other")] == ["elsewhere"]
    assert len(mc.list_cubes()) == 6  # the administrator sees every cube
    # Listing is not a use: it counts no access.
    assert [c.stats for c in alice.list_cubes()] == [c.stats for c in alice.list_cubes()]
    alice.delete(mine[1])
    assert mine[1] not in {c.id for c in alice.list_cubes()}
    assert [c.id for c in alice.list_cubes(filters={"states": ["deleted"]})] == [mine[1]]
    # A grant shows the cube; the grantee does not see the ACL of a cube they may only read.
    assert [g for c in alice.list_cubes(filters={"owner": "bob"}) for g in c.acl] == []
    for bad in ({"limit": 0}, {"offset": -1}, {"limit": 1001}):
        with pytest.raises(ValidationError):
            alice.list_cubes(**bad)  # type: ignore[arg-type]
