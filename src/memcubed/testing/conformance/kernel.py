"""Every kernel write and read through the Python API, on each backend with the real embedder."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import memcubed
from memcubed import AccessDenied, AlreadyExists, CubeState, NotFound, Right, VersionConflict
from memcubed.cube.ids import new_cube_id, owned_cube_id

Counts = Callable[[str], dict[str, int]]


def test_add_returns_version_one_owned_by_the_actor(mc: memcubed.Memcubed) -> None:
    alice = mc.as_principal("alice")
    cube = alice.add("Alice prefers tea over coffee", tags=["prefs", "drinks", "prefs"], importance=0.8,
                     namespace="home", meta={"lang": "en"}, source={"type": "conversation", "uri": "c1"})
    assert cube.version == 1
    assert cube.owner == "alice"
    assert cube.namespace == "home"
    assert cube.tags == ["drinks", "prefs"]
    assert cube.importance == 0.8
    assert cube.state is CubeState.ACTIVE
    assert cube.created_at == cube.updated_at
    assert cube.source.uri == "c1"
    stored = alice.get(cube.id)
    assert stored.model_dump(exclude={"stats"}) == cube.model_dump(exclude={"stats"})


def test_a_given_id_is_scoped_to_its_owner(mc: memcubed.Memcubed) -> None:
    wanted = new_cube_id()
    cube = mc.add("imported memory", id=wanted.upper())
    assert cube.id == owned_cube_id("admin", wanted) != wanted
    assert mc.get(cube.id).text == "imported memory"
    with pytest.raises(AlreadyExists):
        mc.add("imported twice", id=wanted)
    # Another principal choosing the same id gets a cube of its own: nobody can squat an importer's ids.
    alices = mc.as_principal("alice").add("alice's import", id=wanted)
    assert alices.id == owned_cube_id("alice", wanted) != cube.id
    with pytest.raises(NotFound):
        mc.as_principal("alice").get(cube.id)


def test_add_many_stores_every_item_with_one_version_and_audit_record_each(
    mc: memcubed.Memcubed, location: str, raw_counts: Counts
) -> None:
    before = raw_counts(location)
    seen: list[tuple[int, int]] = []
    cubes = mc.add_many([{"text": f"fact number {i}"} for i in range(5)], progress=lambda d, t: seen.append((d, t)))
    after = raw_counts(location)
    assert [mc.get(c.id).text for c in cubes] == [f"fact number {i}" for i in range(5)]
    assert after["cubes"] - before["cubes"] == 5
    assert after["cube_versions"] - before["cube_versions"] == 5
    assert after["audit"] - before["audit"] == 5
    assert seen[-1] == (5, 5)
    assert [r.op for r in mc.audit()[-5:]] == ["add"] * 5


def test_add_many_is_atomic_when_a_later_id_exists(mc: memcubed.Memcubed, location: str, raw_counts: Counts) -> None:
    key = new_cube_id()
    taken = mc.add("already here", id=key)
    before = raw_counts(location)
    audit_before = mc.audit()
    fresh = [new_cube_id() for _ in range(3)]
    batch = [{"text": "first", "id": fresh[0]}, {"text": "second", "id": fresh[1]},
             {"text": "clash", "id": key}, {"text": "fourth", "id": fresh[2]}]
    with pytest.raises(AlreadyExists) as info:
        mc.add_many(batch)
    assert info.value.code == "already_exists"
    assert raw_counts(location) == before
    assert mc.audit() == audit_before
    for cube_id in fresh:
        with pytest.raises(NotFound):
            mc.get(owned_cube_id("admin", cube_id))
    assert mc.search("first second fourth", mode="lexical").hits == []
    assert mc.get(taken.id).text == "already here"
    assert mc.verify_audit().ok


def test_get_counts_accesses_without_a_new_version(mc: memcubed.Memcubed) -> None:
    cube = mc.add("read me twice")
    mc.get(cube.id)
    mc.kernel.flush_events()
    again = mc.get(cube.id)
    assert again.version == 1
    assert again.stats.access_count == 1
    mc.kernel.flush_events()
    assert mc.get(cube.id).stats.access_count == again.stats.access_count + 1
    assert len(mc.history(cube.id)) == 1


def test_get_as_of_returns_the_state_at_that_time(mc: memcubed.Memcubed) -> None:
    cube = mc.add("the office is on floor 3")
    v2 = mc.update(cube.id, text="the office is on floor 5")
    v3 = mc.update(cube.id, importance=0.9)
    assert mc.get(cube.id, as_of=cube.created_at).text == "the office is on floor 3"
    assert mc.get(cube.id, as_of=v2.updated_at).version == 2
    between = v2.updated_at + (v3.updated_at - v2.updated_at) / 2
    assert mc.get(cube.id, as_of=between).text == "the office is on floor 5"
    assert mc.get(cube.id, as_of=v3.updated_at + timedelta(days=1)).version == 3
    with pytest.raises(NotFound):
        mc.get(cube.id, as_of=cube.created_at - timedelta(seconds=1))


def test_get_as_of_reaches_before_a_delete(mc: memcubed.Memcubed) -> None:
    cube = mc.add("short lived")
    mc.delete(cube.id)
    assert mc.get(cube.id, as_of=cube.created_at).text == "short lived"


def test_update_writes_the_next_version_and_keeps_the_old_one(mc: memcubed.Memcubed) -> None:
    cube = mc.add("Bob lives in Paris", tags=["where"])
    new = mc.update(cube.id, text="Bob lives in Berlin", tags=["where", "moved"], meta={"k": 1})
    assert new.version == 2
    assert new.created_at == cube.created_at
    assert new.updated_at > cube.updated_at
    assert mc.get(cube.id).text == "Bob lives in Berlin"
    old = mc.get_version(cube.id, 1)
    assert old.op == "add"
    assert old.actor == "admin"
    assert old.cube.text == "Bob lives in Paris"
    assert old.cube.tags == ["where"]
    assert mc.get_version(cube.id, 2).cube.model_dump(exclude={"stats"}) == new.model_dump(exclude={"stats"})
    assert [h.version for h in mc.history(cube.id)] == [1, 2]
    assert [h.op for h in mc.history(cube.id)] == ["add", "update"]
    assert [h.cube.text for h in mc.history(cube.id, limit=1, offset=1)] == ["Bob lives in Berlin"]
    record = mc.audit(cube_id=cube.id)[-1]
    assert (record.op, record.version) == ("update", 2) and record.details["fields"] == ["meta", "tags", "text"]


def test_update_reindexes_new_text(mc: memcubed.Memcubed) -> None:
    cube = mc.add("the parrot is called Polly")
    mc.update(cube.id, text="the parrot is called Kiwi")
    assert mc.search("Polly", mode="lexical").hits == []
    assert [h.cube.id for h in mc.search("Kiwi", mode="lexical").hits] == [cube.id]


def test_update_with_expected_version(mc: memcubed.Memcubed) -> None:
    cube = mc.add("counter is 0")
    assert mc.update(cube.id, text="counter is 1", expected_version=1).version == 2
    with pytest.raises(VersionConflict) as info:
        mc.update(cube.id, text="counter is 1 again", expected_version=1)
    assert info.value.code == "version_conflict"
    assert info.value.details == {"id": cube.id, "expected": 1, "actual": 2}


def test_failed_update_changes_nothing(mc: memcubed.Memcubed, location: str, raw_counts: Counts) -> None:
    cube = mc.add("stable text")
    mc.update(cube.id, importance=0.3)
    before_cube = mc.get(cube.id)
    before_rows, before_history, before_audit = raw_counts(location), mc.history(cube.id), mc.audit()
    with pytest.raises(VersionConflict):
        mc.update(cube.id, text="lost write", expected_version=1)
    with pytest.raises(NotFound):
        mc.as_principal("bob").update(cube.id, text="not bob's")
    assert raw_counts(location) == before_rows
    assert mc.history(cube.id) == before_history
    assert mc.audit() == before_audit
    after = mc.get(cube.id)
    assert after.model_dump(exclude={"stats"}) == before_cube.model_dump(exclude={"stats"})
    assert mc.search("lost write", mode="lexical").hits == []


def test_delete_is_soft(mc: memcubed.Memcubed) -> None:
    cube = mc.add("to be deleted soon")
    deleted = mc.delete(cube.id, expected_version=1)
    assert (deleted.version, deleted.state) == (2, CubeState.DELETED)
    with pytest.raises(NotFound):
        mc.get(cube.id)
    assert mc.get(cube.id, include_deleted=True).text == "to be deleted soon"
    assert [h.op for h in mc.history(cube.id)] == ["add", "delete"]
    assert mc.get_version(cube.id, 1).cube.text == "to be deleted soon"
    assert mc.search("deleted soon", mode="lexical").hits == []
    assert mc.search("deleted soon", mode="vector").hits == []
    with pytest.raises(NotFound):
        mc.update(cube.id, text="revive")
    with pytest.raises(NotFound):
        mc.delete(cube.id)
    found = mc.search("deleted soon", mode="lexical", filters={"states": ["deleted"]}).hits
    assert [h.cube.id for h in found] == [cube.id]


def test_delete_with_a_stale_expected_version_conflicts(mc: memcubed.Memcubed) -> None:
    cube = mc.add("guarded")
    mc.update(cube.id, importance=0.1)
    with pytest.raises(VersionConflict):
        mc.delete(cube.id, expected_version=1)
    assert mc.get(cube.id).state is CubeState.ACTIVE


def test_forget_purges_text_everywhere_and_keeps_a_tombstone(
    mc: memcubed.Memcubed, location: str, raw_db: Callable[[str], Any]
) -> None:
    secret = "my passport number is XK-99431"
    cube = mc.add(secret)
    mc.update(cube.id, text=secret + " (renewed)")
    mc.delete(cube.id)
    tomb = mc.forget(cube.id)
    assert (tomb.version, tomb.state, tomb.forgotten, tomb.text) == (4, CubeState.DELETED, True, None)
    conn = raw_db(location)
    current = [r[0] for r in conn.execute("SELECT text FROM cubes WHERE id = ?", (cube.id,))]
    versions = [r[0] for r in conn.execute("SELECT text FROM cube_versions WHERE cube_id = ?", (cube.id,))]
    snapshots = [r[0] for r in conn.execute("SELECT snapshot FROM cube_versions WHERE cube_id = ?", (cube.id,))]
    fts = conn.execute("SELECT count(*) FROM cube_fts WHERE text LIKE '%passport%' OR context LIKE '%passport%'"
                       ).fetchone()[0]
    emb = conn.execute("SELECT count(*) FROM cube_emb e JOIN cubes c ON c.seq = e.seq WHERE c.id = ?",
                       (cube.id,)).fetchone()[0]
    assert (fts, emb) == (0, 0)
    assert current == [None]
    assert versions == [None, None, None, None]
    assert not any("XK-99431" in s for s in snapshots)
    assert all(h.cube.text is None for h in mc.history(cube.id))
    assert [h.op for h in mc.history(cube.id)] == ["add", "update", "delete", "forget"]
    for mode in ("lexical", "vector", "hybrid"):
        found = mc.search("passport number XK-99431", mode=mode, filters={"states": ["active", "deleted"]})
        assert found.hits == []
    assert mc.get(cube.id, include_deleted=True).forgotten
    with pytest.raises(NotFound):
        mc.forget(cube.id)
    assert [r.op for r in mc.audit(cube_id=cube.id)] == ["add", "update", "delete", "forget"]
    report = mc.verify_audit()
    assert report.ok, report.problems


def test_forget_an_active_cube(mc: memcubed.Memcubed) -> None:
    cube = mc.add("forget me directly")
    assert mc.forget(cube.id).version == 2
    with pytest.raises(NotFound):
        mc.get(cube.id)


def test_missing_cube_is_not_found_everywhere(mc: memcubed.Memcubed) -> None:
    ghost = new_cube_id()
    calls: list[Callable[[], object]] = [
        lambda: mc.get(ghost), lambda: mc.update(ghost, text="x"), lambda: mc.delete(ghost),
        lambda: mc.forget(ghost), lambda: mc.history(ghost), lambda: mc.get_version(ghost, 1),
        lambda: mc.share(ghost, "alice"), lambda: mc.revoke(ghost, "alice"), lambda: mc.audit(cube_id=ghost),
    ]
    for call in calls:
        with pytest.raises(NotFound) as info:
            call()
        assert info.value.code == "not_found"


def test_get_version_that_does_not_exist(mc: memcubed.Memcubed) -> None:
    cube = mc.add("one version only")
    with pytest.raises(NotFound) as info:
        mc.get_version(cube.id, 2)
    assert info.value.details == {"id": cube.id, "version": 2}


def test_audit_log_pages_and_verifies(mc: memcubed.Memcubed) -> None:
    cube = mc.add("audited")
    mc.update(cube.id, text="audited again")
    records = mc.audit()
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    assert records[0].op == "principal.create"
    assert records[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    assert mc.audit(after_seq=records[-2].seq) == records[-1:]
    assert mc.audit(limit=2) == records[:2]
    assert [(r.op, r.version) for r in mc.audit(cube_id=cube.id)] == [("add", 1), ("update", 2)]
    report = mc.verify_audit()
    assert (report.ok, report.records, report.problems, report.first_bad_seq) == (True, len(records), [], None)


def test_audit_reads_need_rights(mc: memcubed.Memcubed) -> None:
    alice, bob = mc.as_principal("alice"), mc.as_principal("bob")
    cube = alice.add("alice's diary")
    assert [r.op for r in alice.audit(cube_id=cube.id)] == ["add"]
    with pytest.raises(NotFound):
        bob.audit(cube_id=cube.id)
    with pytest.raises(AccessDenied):
        alice.audit()
    with pytest.raises(AccessDenied):
        alice.verify_audit()
    alice.share(cube.id, "bob", Right.READ)
    assert bob.audit(cube_id=cube.id) == []  # a reader sees only its own records (see test_side_channels)
    alice.share(cube.id, "bob", Right.ADMIN)
    assert [r.op for r in bob.audit(cube_id=cube.id)] == ["add", "share", "share"]


def test_principals_are_admin_only(mc: memcubed.Memcubed) -> None:
    assert [p.name for p in mc.principals()] == ["admin", "alice", "bob", "carol"]
    admin = next(p for p in mc.principals() if p.name == "admin")
    assert admin.is_admin and admin.kind == "service"
    agent = mc.create_principal("scout", kind="agent")
    assert (agent.name, agent.kind, agent.is_admin) == ("scout", "agent", False)
    with pytest.raises(AlreadyExists):
        mc.create_principal("scout")
    alice = mc.as_principal("alice")
    with pytest.raises(AccessDenied):
        alice.create_principal("mallory")
    with pytest.raises(AccessDenied):
        alice.principals()
    assert "mallory" not in [p.name for p in mc.principals()]
    ops = [(r.op, r.details) for r in mc.audit() if r.op == "principal.create"]
    assert ops[-1] == ("principal.create", {"name": "scout", "is_admin": False})


def test_second_admin_sees_everything(mc: memcubed.Memcubed) -> None:
    mc.create_principal("root2", is_admin=True)
    cube = mc.as_principal("alice").add("alice's private note")
    root2 = mc.as_principal("root2")
    assert root2.get(cube.id).text == "alice's private note"
    assert root2.verify_audit().ok


def test_events_are_emitted_after_commit(mc: memcubed.Memcubed) -> None:
    seen: list[tuple[str, int | None]] = []
    unsubscribe = mc.kernel.events.subscribe(lambda e: seen.append((e.kind, e.version)), {"add", "update"})
    cube = mc.add("evented")
    mc.update(cube.id, importance=0.2)
    with pytest.raises(VersionConflict):
        mc.update(cube.id, importance=0.3, expected_version=1)
    unsubscribe()
    mc.update(cube.id, importance=0.4)
    assert seen == [("add", 1), ("update", 2)]


def test_store_reopens_with_its_data(open_mc: Callable[..., memcubed.Memcubed], location: str) -> None:
    first = open_mc(location)
    cube = first.add("persisted across opens")
    first.close()
    again = open_mc(location)
    assert again.get(cube.id).text == "persisted across opens"
    assert [h.cube.id for h in again.search("persisted", mode="vector").hits] == [cube.id]
    assert again.verify_audit().ok


def test_timestamps_are_utc(mc: memcubed.Memcubed) -> None:
    cube = mc.add("time check")
    assert cube.created_at.tzinfo is not None
    assert abs(datetime.now(UTC) - cube.created_at) < timedelta(minutes=5)


def test_add_many_takes_precomputed_vectors(mc: memcubed.Memcubed, embedder: Any) -> None:
    texts = ["the lighthouse keeper feeds the gulls", "quarterly tax return is due in April"]
    scaled = embedder.embed(texts) * 3.0
    cubes = mc.kernel.add_many([{"text": t} for t in texts], principal="admin", vectors=scaled)
    hits = mc.search("seabirds on the coast", mode="vector").hits
    assert hits[0].cube.id == cubes[0].id
    assert abs(hits[0].signals["vector"].score - float(embedder.embed(["seabirds on the coast"])[0]
                                                       @ embedder.embed(texts[:1])[0])) < 1e-4


def test_add_many_vectors_need_an_embedder(open_mc: Callable[..., memcubed.Memcubed], location: str) -> None:
    plain = open_mc(location, embedder="none")
    with pytest.raises(memcubed.ValidationError):
        plain.kernel.add_many([{"text": "a"}], principal="admin", vectors=[[1.0]])  # type: ignore[arg-type]
    assert plain.search("a", mode="lexical").hits == []


def test_forget_purges_the_text_from_later_turns_context(
    mc: memcubed.Memcubed, location: str, raw_db: Callable[[str], Any]
) -> None:
    """A turn is indexed with its preceding turn as lexical context; forgetting that turn must purge it there."""
    secret = mc.add("my locker code is quokka-7731", source={"uri": "chat-42"})
    mc.update(secret.id, text="my locker code is wombat-5512")
    reply = mc.add("noted, I will remember it", source={"uri": "chat-42"})
    later = mc.add("thanks a lot", source={"uri": "chat-42"})
    mc.update(later.id, text="thanks a lot, see you")
    mc.forget(secret.id)
    for word in ("quokka", "wombat", "locker"):
        assert mc.search(word, mode="lexical").hits == [], word
    conn = raw_db(location)
    rows = conn.execute("SELECT text, context FROM cube_fts").fetchall()
    assert not [r for r in rows if any(w in f"{r[0]} {r[1]}" for w in ("quokka", "wombat", "locker"))]
    assert mc.get(reply.id).text == "noted, I will remember it"
    assert mc.search("remember", mode="lexical").hits[0].cube.id == reply.id
