"""The audit seal: a keyed chain, a signed head outside the store, and cube rows checked against the log.

Each attack is what someone with write access to the database (but not to the key beside it) can do,
done through a raw connection; before the seal, ``audit verify`` said ok after every one of them.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import memcubed
from memcubed.backends.selection import open_backend
from memcubed.kernel import Kernel
from memcubed.kernel.audit import HEAD_KEY, record_hash
from memcubed.kernel.seal import KEYED_FROM
from memcubed.schemas.ops import AuditRecord
from memcubed.testing.backends import Backend

RawDb = Callable[[str], Any]
OpenMc = Callable[..., memcubed.Memcubed]


def _populate(mc: memcubed.Memcubed) -> list[memcubed.MemCube]:
    first = mc.add("the vault code is 1234")
    mc.update(first.id, text="the vault code is 4321")
    second = mc.add("Alice's birthday is in May", tags=["family"])
    mc.share(second.id, "alice")
    mc.revoke(second.id, "alice")
    third = mc.add("to be forgotten")
    mc.forget(third.id)
    gone = mc.add("deleted soon")
    mc.delete(gone.id)
    mc.share(first.id, "alice")  # grants change without a content version
    return [mc.get(first.id), mc.get(second.id)]


def _rewrite_from(conn: Any, records: list[AuditRecord], seq: int, details: dict[str, Any]) -> None:
    """Edit record ``seq`` and recompute every later hash, as the plain SHA-256 chain allowed."""
    prev = ""
    for record in records:
        if record.seq < seq:
            prev = record.hash
            continue
        changed = record.model_copy(update={"prev_hash": prev, **({"details": details} if record.seq == seq else {})})
        changed = changed.model_copy(update={"hash": record_hash(changed)})
        conn.execute("UPDATE audit SET details = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                     (json.dumps(changed.details, sort_keys=True, separators=(",", ":")), changed.prev_hash,
                      changed.hash, changed.seq))
        prev = changed.hash
    conn.execute("UPDATE meta SET value = ? WHERE key = ?", (f"{records[-1].seq}:{prev}", HEAD_KEY))


def test_a_populated_store_verifies_and_its_chain_is_keyed(mc: memcubed.Memcubed) -> None:
    _populate(mc)
    report = mc.verify_audit()
    assert report.ok, report.problems
    assert report.notes == []
    records = mc.audit()
    assert all(record_hash(r, mc.kernel.seal) == r.hash for r in records)
    assert not any(record_hash(r) == r.hash for r in records)  # plain SHA-256 no longer reproduces them
    assert all("content" in r.details for r in records if r.cube_id is not None)


def test_a_cut_tail_with_a_rewritten_stored_head_is_detected(mc: memcubed.Memcubed, location: str,
                                                            raw_db: RawDb) -> None:
    _populate(mc)
    records = mc.audit()
    conn = raw_db(location)
    conn.unlock_audit()
    keep = records[-3]
    conn.execute("DELETE FROM audit WHERE seq > ?", (keep.seq,))
    conn.execute("UPDATE meta SET value = ? WHERE key = ?", (f"{keep.seq}:{keep.hash}", HEAD_KEY))
    report = mc.verify_audit()
    assert not report.ok and report.records == keep.seq
    assert any("signed head" in p for p in report.problems), report.problems


def test_an_edited_record_with_recomputed_hashes_is_detected(mc: memcubed.Memcubed, location: str,
                                                            raw_db: RawDb) -> None:
    _populate(mc)
    records = mc.audit()
    victim = next(r for r in records if r.op == "principal.create" and r.details.get("name") == "bob")
    conn = raw_db(location)
    conn.unlock_audit()
    _rewrite_from(conn, records, victim.seq, {"name": "bob", "is_admin": True})
    report = mc.verify_audit()
    assert not report.ok and report.first_bad_seq == victim.seq, report.problems


@pytest.mark.parametrize("edit", ["cubes.text", "cube_versions.text", "cubes.owner", "cube_versions.snapshot", "acl"])
def test_a_cube_edited_in_its_tables_is_detected(mc: memcubed.Memcubed, location: str, raw_db: RawDb,
                                                edit: str) -> None:
    first, _ = _populate(mc)
    conn = raw_db(location)
    if edit == "cubes.text":
        conn.execute("UPDATE cubes SET text = ? WHERE id = ?", ("the vault code is 0000", first.id))
    elif edit == "cube_versions.text":
        conn.execute("UPDATE cube_versions SET text = ? WHERE cube_id = ? AND version = 1",
                     ("the vault code is 0000", first.id))
    elif edit == "cubes.owner":
        conn.execute("UPDATE cubes SET owner = ? WHERE id = ?", ("alice", first.id))
    elif edit == "acl":
        conn.execute('UPDATE acl SET "right" = 4 WHERE principal = ?', ("alice",))
    else:
        row = conn.execute("SELECT snapshot FROM cube_versions WHERE cube_id = ? AND version = 1",
                           (first.id,)).fetchone()
        snapshot = json.loads(row[0])
        snapshot["importance"] = 0.99
        conn.execute("UPDATE cube_versions SET snapshot = ? WHERE cube_id = ? AND version = 1",
                     (json.dumps(snapshot), first.id))
    report = mc.verify_audit()
    assert not report.ok and any(first.id in p for p in report.problems), report.problems


def test_the_key_and_head_live_outside_the_store_and_a_missing_key_is_refused(
        open_mc: OpenMc, backend: Backend, raw_db: RawDb, tmp_path: Path) -> None:
    key_file, head_file = tmp_path / "audit.key", tmp_path / "audit.head"
    settings = memcubed.Settings(audit_key_file=str(key_file), audit_head_file=str(head_file))
    location = backend.location()
    mc = open_mc(location, embedder="none", settings=settings)
    mc.create_principal("alice")
    _populate(mc)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600 and stat.S_IMODE(os.stat(head_file).st_mode) == 0o600
    secret = key_file.read_bytes()
    conn = raw_db(location)
    assert not any(secret.decode() in str(v) for (v,) in conn.execute("SELECT value FROM meta").fetchall())
    assert json.loads(head_file.read_text())["seq"] == mc.audit()[-1].seq  # checkpointed after the last commit
    mc.close()

    key_file.unlink()
    with pytest.raises(memcubed.ConfigurationError, match="key is missing"):
        memcubed.open(location, embedder="none", settings=settings)
    # The key given in the environment instead works as well as the file.
    with memcubed.open(location, embedder="none", settings=memcubed.Settings(
            audit_key=SecretStr(secret.decode()), audit_head_file=str(head_file))) as again:
        assert again.verify_audit().ok
    # A forged head file (not signed by the key) is reported.
    head_file.write_text(json.dumps({"seq": 1, "hash": "0" * 64, "keyed_from": 1, "signature": "f" * 64}))
    with memcubed.open(location, embedder="none", settings=memcubed.Settings(
            audit_key=SecretStr(secret.decode()), audit_head_file=str(head_file))) as forged:
        report = forged.verify_audit()
        assert not report.ok and any("not signed" in p for p in report.problems)


def test_a_store_from_before_the_seal_is_keyed_from_its_next_record(
        open_mc: OpenMc, backend: Backend, raw_db: RawDb) -> None:
    location = backend.location()
    store, blobs = open_backend(location)
    legacy = memcubed.Memcubed(Kernel(store, blobs=blobs, embedder=None), "admin")  # no seal: plain SHA-256
    legacy.add("written before the audit key existed")
    before = legacy.audit()[-1].seq
    assert legacy.verify_audit().ok and legacy.verify_audit().notes
    legacy.close()

    mc = open_mc(location, embedder="none")
    mc.add("written after")
    records = mc.audit()
    assert records[before].op == "audit.key" and records[before].details == {"keyed_from": before + 1}
    assert raw_db(location).execute("SELECT value FROM meta WHERE key = ?", (KEYED_FROM,)).fetchone()[0] == \
        str(before + 1)
    report = mc.verify_audit()
    assert report.ok, report.problems
    assert report.notes == [f"records 1..{before} predate the audit key (plain SHA-256 chain)"]
    assert all(record_hash(r) == r.hash for r in records[:before])
    assert all(record_hash(r, mc.kernel.seal) == r.hash != record_hash(r) for r in records[before:])


def test_a_key_location_that_cannot_be_written_is_a_configuration_error(backend: Backend, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings = memcubed.Settings(audit_key_file=str(blocker / "audit.key"))
    with pytest.raises(memcubed.ConfigurationError, match="audit key"):
        memcubed.open(backend.location(), embedder="none", settings=settings)
