"""The job worker: an idle worker collects unreferenced blobs every ``blob_gc_interval_s``."""

from __future__ import annotations

import time
from pathlib import Path

import memcubed
from memcubed.composition import job_worker
from memcubed.settings import Settings
from memcubed.testing.conformance.fixtures import OpenMc


def test_an_idle_worker_collects_orphan_blobs(open_mc: OpenMc, db_path: Path) -> None:
    mc: memcubed.Memcubed = open_mc(db_path, embedder="none",
                                    settings=Settings(blob_gc_grace_s=0, blob_gc_interval_s=0.05))
    orphan = mc.kernel.blobs.put(b"a segment whose job was killed before its cube committed")
    worker = job_worker(mc.kernel, poll_s=0.01, gc=True).start()
    try:
        deadline = time.monotonic() + 120
        while mc.kernel.blobs.exists(orphan) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
    assert not mc.kernel.blobs.exists(orphan)
    (record,) = [r for r in mc.audit() if r.op == "gc"]
    assert (record.principal, record.details["collected"]) == ("admin", 1)
    quiet = job_worker(mc.kernel, poll_s=0.01)  # gc=False: a worker that never collects
    assert quiet.gc_every_s == 0
