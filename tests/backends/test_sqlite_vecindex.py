"""The SQLite store's in-process binary vector index: codes, and freshness across store instances."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

import memcubed
from memcubed.backends.sqlite.vecindex import binary_codes


def test_codes_pack_sign_bits_so_hamming_counts_disagreements() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 384)).astype(np.float32)
    codes = binary_codes(np.stack([a, b]))
    assert codes.shape == (6, 2) and codes.dtype == np.uint64
    hamming = int(np.bitwise_count(codes[:, 0] ^ codes[:, 1]).sum())
    assert hamming == int(((a > 0) != (b > 0)).sum())
    odd = binary_codes(rng.normal(size=(3, 100)).astype(np.float32))  # 100 bits pad to two words
    assert odd.shape == (2, 3)


def test_a_second_store_on_the_file_sees_every_write_of_the_first(
    open_mc: Callable[..., memcubed.Memcubed], tmp_path: Path
) -> None:
    approximate = memcubed.Settings(exact_vectors_up_to=0)
    writer = open_mc(tmp_path / "v.db", settings=approximate)
    reader = open_mc(tmp_path / "v.db", settings=approximate)  # its own connections and index, as another process
    for i in range(40):
        writer.add(f"Day {i}: notes on gardening and compost, part {i}")
    assert len(reader.search("compost heap", mode="vector", k=5).hits) == 5  # loads the namespace
    boat = writer.add("We sailed the small wooden boat across the bay at dawn.")
    assert reader.search("sailing a boat", mode="vector", k=1).hits[0].cube.id == boat.id  # replayed the log
    writer.update(boat.id, text="The pottery class meets on Thursday evenings.")
    assert reader.search("ceramics lessons", mode="vector", k=1).hits[0].cube.id == boat.id  # new embedding
    writer.forget(boat.id)
    assert boat.id not in [h.cube.id for h in reader.search("pottery class", mode="vector", k=10).hits]
