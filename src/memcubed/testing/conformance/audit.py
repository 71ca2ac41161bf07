"""The hash-chained audit log: one record per mutation, and verify_audit catches every kind of tampering.

Tampering goes straight at the database through a raw connection (``memcubed.testing.backends.RawDb``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import memcubed
from memcubed.kernel.audit import GENESIS, record_hash
from memcubed.testing.backends import Backend

RawDb = Callable[[str], Any]
Tamper = Callable[[Any, int], None]


def _unlock(conn: Any) -> None:
    conn.unlock_audit()


def _populate(mc: memcubed.Memcubed) -> None:
    cube = mc.add("first memory")
    mc.update(cube.id, text="first memory, revised")
    other = mc.add("second memory")
    mc.share(other.id, "alice")
    mc.delete(cube.id)


def _edit(column: str, value: Any) -> Tamper:
    def tamper(conn: Any, seq: int) -> None:
        conn.execute(f"UPDATE audit SET {column} = ? WHERE seq = ?", (value, seq))

    return tamper


def _delete(conn: Any, seq: int) -> None:
    conn.execute("DELETE FROM audit WHERE seq = ?", (seq,))


def _swap_with_next(conn: Any, seq: int) -> None:
    cols = "at, principal, op, cube_id, version, details, prev_hash, hash"
    a = conn.execute(f"SELECT {cols} FROM audit WHERE seq = ?", (seq,)).fetchone()
    b = conn.execute(f"SELECT {cols} FROM audit WHERE seq = ?", (seq + 1,)).fetchone()
    sets = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
    conn.execute(f"UPDATE audit SET {sets} WHERE seq = ?", (*b, seq))
    conn.execute(f"UPDATE audit SET {sets} WHERE seq = ?", (*a, seq + 1))


def _renumber_swap(conn: Any, seq: int) -> None:
    conn.execute("UPDATE audit SET seq = -1 WHERE seq = ?", (seq,))
    conn.execute("UPDATE audit SET seq = ? WHERE seq = ?", (seq, seq + 1))
    conn.execute("UPDATE audit SET seq = ? WHERE seq = -1", (seq + 1,))


def _append_forged(conn: Any, seq: int) -> None:
    last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    conn.execute("INSERT INTO audit (seq, at, principal, op, cube_id, version, details, prev_hash, hash)"
                 " VALUES (?, '2030-01-01T00:00:00.000000Z', 'mallory', 'forge', NULL, NULL, '{}', ?, ?)",
                 (last[0] + 1, last[1], "f" * 64))


TAMPERS: dict[str, Tamper] = {
    "edit principal": _edit("principal", "mallory"),
    "edit op": _edit("op", "read"),
    "edit at": _edit("at", "2001-01-01T00:00:00.000000Z"),
    "edit cube_id": _edit("cube_id", "01a20e2e-0000-7000-8000-000000000000"),
    "edit version": _edit("version", 99),
    "edit details": _edit("details", '{"name":"mallory","is_admin":true}'),
    "edit prev_hash": _edit("prev_hash", "1" * 64),
    "edit hash": _edit("hash", "2" * 64),
    "unparsable at": _edit("at", "yesterday"),
    "unparsable details": _edit("details", "{not json"),
    "non-integer version": _edit("version", "v2"),
    "delete middle record": _delete,
    "swap contents with next": _swap_with_next,
    "swap positions with next": _renumber_swap,
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_tampering_a_middle_record_is_detected(mc: memcubed.Memcubed, location: str, raw_db: RawDb,
                                               name: str) -> None:
    _populate(mc)
    count = len(mc.audit())
    assert mc.verify_audit().ok
    conn = raw_db(location)
    _unlock(conn)
    TAMPERS[name](conn, count // 2)
    report = mc.verify_audit()
    assert not report.ok
    assert report.problems
    assert report.first_bad_seq is not None
    assert report.first_bad_seq <= count // 2 + 1


def test_deleting_the_last_record_is_detected(mc: memcubed.Memcubed, location: str, raw_db: RawDb) -> None:
    _populate(mc)
    last = mc.audit()[-1].seq
    conn = raw_db(location)
    _unlock(conn)
    _delete(conn, last)
    report = mc.verify_audit()
    assert not report.ok
    assert report.records == last - 1


def test_appending_a_forged_record_is_detected(mc: memcubed.Memcubed, location: str, raw_db: RawDb) -> None:
    _populate(mc)
    conn = raw_db(location)
    _append_forged(conn, 0)
    assert not mc.verify_audit().ok


def test_emptying_the_log_is_detected(mc: memcubed.Memcubed, location: str, raw_db: RawDb) -> None:
    _populate(mc)
    conn = raw_db(location)
    _unlock(conn)
    conn.execute("DELETE FROM audit")
    report = mc.verify_audit()
    assert (report.ok, report.records) == (False, 0)


def test_triggers_forbid_update_and_delete(mc: memcubed.Memcubed, location: str, raw_db: RawDb) -> None:
    _populate(mc)
    conn = raw_db(location)
    with pytest.raises(conn.error, match="append-only"):
        conn.execute("UPDATE audit SET principal = 'mallory' WHERE seq = 1")
    with pytest.raises(conn.error, match="append-only"):
        conn.execute("DELETE FROM audit WHERE seq = 1")
    assert mc.verify_audit().ok


def test_records_chain_from_genesis(mc: memcubed.Memcubed) -> None:
    _populate(mc)
    records = mc.audit()
    assert records[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(records):
        assert after.prev_hash == before.hash
    assert all(record_hash(r, mc.kernel.seal) == r.hash for r in records)


def test_mutations_write_one_record_each_and_reads_none(mc: memcubed.Memcubed) -> None:
    def delta(call: Callable[[], object]) -> list[tuple[str, str | None, int | None]]:
        seq = mc.audit()[-1].seq
        call()
        return [(r.op, r.cube_id, r.version) for r in mc.audit(after_seq=seq)]

    cube = mc.add("audited memory")
    assert delta(lambda: mc.update(cube.id, importance=0.7)) == [("update", cube.id, 2)]
    assert delta(lambda: mc.share(cube.id, "bob", "write")) == [("share", cube.id, 2)]  # ACL: same content version
    assert delta(lambda: mc.revoke(cube.id, "bob")) == [("revoke", cube.id, 2)]
    assert delta(lambda: mc.archive(cube.id)) == [("archive", cube.id, 3)]
    assert delta(lambda: mc.restore(cube.id)) == [("restore", cube.id, 4)]
    assert delta(lambda: mc.delete(cube.id)) == [("delete", cube.id, 5)]
    assert delta(lambda: mc.undelete(cube.id)) == [("undelete", cube.id, 6)]
    assert delta(lambda: mc.delete(cube.id)) == [("delete", cube.id, 7)]
    assert delta(lambda: mc.forget(cube.id)) == [("forget", cube.id, 8)]
    assert delta(lambda: mc.create_principal("dave")) == [("principal.create", None, None)]
    other = mc.add("read only")
    for read in (lambda: mc.get(other.id), lambda: mc.history(other.id), lambda: mc.search("read only"),
                 lambda: mc.get_version(other.id, 1), lambda: mc.principals(), lambda: mc.verify_audit()):
        assert delta(read) == []


_OPS = st.lists(st.sampled_from(["add", "update", "share", "delete"]), min_size=1, max_size=6)


def _run_ops(mc: memcubed.Memcubed, ops: list[str]) -> None:
    ids: list[str] = []
    for i, op in enumerate(ops):
        if op == "add" or not ids:
            ids.append(mc.add(f"memory {i}").id)
        elif op == "update":
            mc.update(ids[-1], text=f"memory {i} updated")
        elif op == "share":
            mc.share(ids[-1], "alice", "read")
        else:
            mc.delete(ids.pop())


@given(ops=_OPS, kind=st.sampled_from(sorted(TAMPERS)), where=st.floats(0, 1))
def test_any_history_then_any_tampering_is_detected(
    open_mc: Callable[..., memcubed.Memcubed], backend: Backend, raw_db: RawDb, ops: list[str], kind: str,
    where: float
) -> None:
    path = backend.location()
    mc = open_mc(path)
    mc.create_principal("alice")
    _run_ops(mc, ops)
    report = mc.verify_audit()
    assert report.ok, report.problems
    count = report.records
    seq = 1 + int(where * (count - 2))  # any record that has a successor
    conn = raw_db(path)
    _unlock(conn)
    TAMPERS[kind](conn, seq)
    assert not mc.verify_audit().ok
