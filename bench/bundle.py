"""Portable bundles: ``python -m bench.bundle`` exports 200 plaintext cubes and one activation cube over 20 of
them (the packaged SmolLM2, fp32 KV) from one SQLite store, imports the bundle into another, and reports the
bundle's size, the export and import times, and whether generation with the imported KV gives the same tokens."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import memcubed
from bench.common import write_result
from memcubed.backends.models import LocalTransformersLM, make_language_model

CUBES = 200
CACHED = 20
QUERY = "\nQuestion: where is item 3 kept? Answer:"


def main() -> dict[str, Any]:
    """Run once; write ``bench/results/bundle.json`` and return the figures."""
    import torch

    torch.set_num_threads(1)
    lm = make_language_model("local")
    assert isinstance(lm, LocalTransformersLM)
    folder = Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    with memcubed.open(folder / "a.db", embedder="none") as mc:
        ids = [mc.add(f"Fact {i}: item {i} is kept in drawer {i * 7 % 13}.", namespace="m").id for i in range(CUBES)]
        act = mc.cache(ids[:CACHED], lm=lm)
        started = time.perf_counter()
        report = mc.export_bundle(folder / "x.mcb", namespace="m")
        export_s = time.perf_counter() - started
        want = mc.generate(QUERY, activation_id=act.id, lm=lm, max_new_tokens=8).text
    with memcubed.open(folder / "b.db", embedder="none") as mc:
        started = time.perf_counter()
        imported = mc.import_bundle(folder / "x.mcb", namespace="m", lms=[lm])
        import_s = time.perf_counter() - started
        got = mc.generate(QUERY, activation_id=imported.ids[act.id], lm=lm, max_new_tokens=8).text
    result = {"cubes": report.cubes, "blobs": report.blobs, "kv_tokens": act.meta["tokens"], "bytes": report.bytes,
            "export_s": round(export_s, 2), "import_s": round(import_s, 2), "same_tokens": want == got}
    write_result("bundle", result)
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
