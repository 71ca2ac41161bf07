"""A KV segment tampered with in the file blob store (SQLite stores) is refused, quarantined and recomputed;
PostgreSQL's blob table has its own test (tests/backends/test_blob_quarantine.py)."""

from __future__ import annotations

import pytest

import memcubed
from memcubed.backends.blobs import FileBlobStore
from memcubed.backends.models import LocalTransformersLM

# The activation suite's fixture, on this module's SQLite file store.
from memcubed.testing.conformance.activation import cached  # noqa: F401


def test_a_kv_blob_tampered_on_disk_is_refused_then_recomputed(
    mc: memcubed.Memcubed, lm: LocalTransformersLM,
    cached: tuple[list[memcubed.MemCube], memcubed.MemCube],  # noqa: F811
) -> None:
    sources, act = cached
    digest = act.segments[-1]
    blobs = mc.kernel.blobs
    assert isinstance(blobs, FileBlobStore)
    victim = blobs.root / digest[:2] / digest[2:]
    intact = victim.read_bytes()
    tampered = bytearray(intact)
    tampered[-10] ^= 0xFF
    victim.write_bytes(bytes(tampered))

    with pytest.raises(memcubed.IntegrityError, match="corrupt"):
        mc.generate("Where is the spare key?", activation_id=act.id, lm=lm, max_new_tokens=2)
    # A retrieving chat is not blocked: the segment is gone from the tree, so it is computed for the request.
    assert mc.chat("Where does Quokka sleep?", lm=lm, k=2, max_new_tokens=2).via == "kv"
    again = mc.cache([s.id for s in sources], lm=lm)
    assert again.meta["computed"] == 1 and again.segments == act.segments
    assert victim.read_bytes() == intact
    assert mc.generate("Where is the spare key?", activation_id=act.id, lm=lm, max_new_tokens=2).injected == [act.id]

    # Tampered again: the next cache finds it itself, and its cube never holds the bad bytes.
    victim.write_bytes(bytes(tampered))
    healed = mc.cache([s.id for s in sources], lm=lm)
    assert healed.meta["computed"] == 1 and victim.read_bytes() == intact
