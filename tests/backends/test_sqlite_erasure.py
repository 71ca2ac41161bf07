"""``forget`` on SQLite leaves no copy of the forgotten text or its vectors in the file bytes (db and WAL)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import memcubed
from memcubed.backends.sqlite import SqliteStore

OpenMc = Callable[..., memcubed.Memcubed]
CANARY = "zqxjvwkcanary"  # porter keeps it whole; no other term shares its first letters (FTS5 leaf prefixes)
CJK_CANARY = "鳕鱼鲟鳇鲱"


def _file_bytes(path: Path) -> bytes:
    """The store as a reader of the disk sees it: the main file, the WAL and the shared-memory index."""
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


def test_forget_erases_the_text_from_every_page_index_and_log(open_mc: OpenMc, tmp_path: Path) -> None:
    path = tmp_path / "erase.db"
    mc = open_mc(path)  # with the embedder: vector tables hold the cube too
    turn = {"type": "conversation", "uri": "chat-7"}
    mc.add("we talked about the weather", source={**turn, "occurred_at": "2024-05-01T10:00:00Z"})
    secret = mc.add(f"my locker code is {CANARY} and {CJK_CANARY}",
                    source={**turn, "occurred_at": "2024-05-01T10:01:00Z"})
    mc.add("ok, noted", source={**turn, "occurred_at": "2024-05-01T10:02:00Z"})  # its context holds the secret
    mc.update(secret.id, text=f"my locker code is still {CANARY} {CJK_CANARY}")  # two versions with the text
    for i in range(30):
        mc.add(f"filler memory number {i} about gardens and boats")
    assert mc.search(CANARY, mode="lexical").hits  # the in-process index loaded it too
    store = mc.kernel.store
    assert isinstance(store, SqliteStore)
    seq = store._all("SELECT seq FROM cubes WHERE id = ?", (secret.id,))[0][0]
    emb = store._all("SELECT emb FROM cube_emb WHERE seq = ?", (seq,))[0][0]
    bits = store._all("SELECT embedding FROM cube_vec WHERE rowid = ?", (seq,))[0][0]
    needles = (CANARY.encode(), CJK_CANARY.encode(), CJK_CANARY[:2].encode(), emb, bytes(bits))
    before = _file_bytes(path)
    assert all(needle in before for needle in needles)  # the probe sees what is there

    mc.forget(secret.id)

    after = _file_bytes(path)
    for needle in needles:
        assert after.count(needle) == 0, needle[:16]
    assert mc.search(CANARY, mode="lexical").hits == []
    assert mc.search("weather gardens", mode="lexical").hits  # the rest still works
    assert mc.verify_audit().ok


def test_scrub_inside_a_transaction_waits_for_the_commit(open_mc: OpenMc, tmp_path: Path) -> None:
    path = tmp_path / "erase.db"
    mc = open_mc(path, embedder="none")
    cube = mc.add(f"the code is {CANARY}")
    store = mc.kernel.store
    assert isinstance(store, SqliteStore)
    with store.transaction():
        store.purge_payloads(cube.id)
        store.scrub()  # nothing yet: a checkpoint cannot run inside the write transaction
    assert Path(f"{path}-wal").stat().st_size > 0
    store.scrub()
    assert Path(f"{path}-wal").stat().st_size == 0 and CANARY.encode() not in _file_bytes(path)
