"""A store opens with the embedder it records (``kernel.embedder_record``), on every backend: an embedder named
explicitly must be that one (spec, dimension, weights), and a damaged record is refused, not guessed at."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import memcubed
from memcubed import ConfigurationError, IntegrityError, Settings
from memcubed.backends.embedders.static import StaticEmbedder
from memcubed.backends.selection import open_backend
from memcubed.kernel.embedder_record import META_KEY, EmbedderRecord
from memcubed.testing.backends import RawDb
from memcubed.testing.static_model import write_static_model

OpenMc = Callable[..., memcubed.Memcubed]


def _record(location: str) -> str | None:
    store, _ = open_backend(location, create=False)
    try:
        return store.get_meta(META_KEY)
    finally:
        store.close()


def _tamper(raw_db: Callable[[str], RawDb], location: str, value: str) -> None:
    raw_db(location).execute("UPDATE meta SET value = ? WHERE key = ?", (value, META_KEY))


def test_a_store_opens_with_the_embedder_it_records(open_mc: OpenMc, location: str, tmp_path: Path) -> None:
    folder = write_static_model(tmp_path / "tiny")
    first = open_mc(location, embedder=f"static:{folder}")
    cube = first.add("my dog is a good pet")
    first.add("the car took the road")
    first.close()
    # Neither an argument nor the settings name an embedder: the store's own is used, not the default.
    again = open_mc(location, embedder=None, settings=Settings())
    assert again.kernel.embedder is not None and again.kernel.embedder.name == f"static:{folder}"
    assert again.search("cat", mode="vector", k=1).hits[0].cube.id == cube.id
    record = EmbedderRecord.decode(_record(location) or "")
    assert (record.spec, record.dim) == (f"static:{folder}", 8) and record.fingerprint.startswith("sha256:")


def test_a_zero_vector_never_breaks_a_vector_search(open_mc: OpenMc, location: str, tmp_path: Path) -> None:
    # A static model gives an all-zero vector to a text of unknown words (cosine undefined): it ranks last.
    folder = write_static_model(tmp_path / "tiny")
    mc = open_mc(location, embedder=f"static:{folder}")
    unknown = mc.add("zebra quokka wombat")
    pet = mc.add("my dog is a good pet")
    hits = mc.search("cat", mode="vector", k=5).hits
    assert [h.cube.id for h in hits][:1] == [pet.id] and unknown.id in {h.cube.id for h in hits}
    assert all(h.score == h.score for h in hits)  # no NaN reaches a caller
    # A query of unknown words is a zero vector too: an answer, not a crash.
    assert {h.cube.id for h in mc.search("xylophone", mode="vector", k=5).hits} <= {unknown.id, pet.id}


def test_a_zero_vector_ranks_last_on_the_indexed_path_too(open_mc: OpenMc, location: str, tmp_path: Path) -> None:
    # Above exact_vectors_up_to the candidates come from the index (SQLite's binary vec0 scan, PostgreSQL's
    # HNSW graph), which meets the zero vector's undefined cosine in its own way; the threshold is lowered
    # instead of writing thousands of cubes. Long memories add window vectors (zero ones too), which
    # PostgreSQL scans without its graph index: pgvector leaves zero vectors out of a cosine graph, not out
    # of a scan, where their NaN must not reach a caller.
    folder = write_static_model(tmp_path / "tiny")
    mc = open_mc(location, embedder=f"static:{folder}",
                 settings=Settings(exact_vectors_up_to=2, embed_windows=True))
    unknown = mc.add("zebra quokka wombat " * 200)
    known = {c.id for c in mc.add_many([{"text": t} for t in (
        "my dog is a good pet", "a cat sat on the mat", "the car took the road",
        " ".join(["my dog chased the cat"] * 150))])}
    hits = mc.search("cat", mode="vector", k=10).hits
    assert hits and hits[0].cube.id in known and all(h.score == h.score for h in hits)  # no NaN, never first
    assert hits[-1].cube.id == unknown.id  # found (PostgreSQL: by its windows' scan), and last
    zero_query = mc.search("xylophone", mode="vector", k=10).hits  # a zero query vector: an answer, not a crash
    assert {h.cube.id for h in zero_query} <= {unknown.id, *known} and all(h.score == h.score for h in zero_query)


def test_a_lexical_store_opens_lexical_without_naming_an_embedder(open_mc: OpenMc, location: str) -> None:
    open_mc(location, embedder="none").add("plain words only")
    assert open_mc(location, embedder=None).kernel.embedder is None


def test_an_embedder_of_another_dimension_is_refused_and_writes_nothing(
        open_mc: OpenMc, location: str, tmp_path: Path) -> None:
    own = write_static_model(tmp_path / "eight", dim=8)
    other = write_static_model(tmp_path / "sixteen", dim=16)
    open_mc(location, embedder=f"static:{own}").add("my dog")
    before = _record(location)
    named = ({"embedder": f"static:{other}"}, {"embedder": None, "settings": Settings(embedder=f"static:{other}")})
    for explicit in named:
        with pytest.raises(ConfigurationError) as info:
            open_mc(location, **explicit)
        assert info.value.details == {"recorded": f"static:{own}|8", "requested": f"static:{other}|16"}
    assert _record(location) == before
    assert open_mc(location, embedder=None).search("pet", mode="vector", k=1).hits[0].cube.text == "my dog"


def test_changed_weights_under_the_same_name_are_refused(open_mc: OpenMc, location: str, tmp_path: Path) -> None:
    folder = write_static_model(tmp_path / "tiny")
    open_mc(location, embedder=StaticEmbedder(folder)).add("my dog")
    write_static_model(folder, shift=0.5)  # same path, name and dimension; other vectors
    with pytest.raises(ConfigurationError) as info:
        open_mc(location, embedder=StaticEmbedder(folder))
    assert info.value.details["recorded"] == info.value.details["requested"] == f"static:{folder}|8"
    assert info.value.details["recorded_fingerprint"] != info.value.details["requested_fingerprint"]


@pytest.mark.parametrize("damage", ["dim", "checksum", "garbage", "legacy", "extra"])
def test_a_tampered_record_is_an_integrity_error(open_mc: OpenMc, location: str, tmp_path: Path,
                                                 raw_db: Callable[[str], RawDb], damage: str) -> None:
    folder = write_static_model(tmp_path / "tiny")
    open_mc(location, embedder=f"static:{folder}").close()
    fields = json.loads(_record(location) or "")
    tampered = {
        "dim": json.dumps({**fields, "dim": 16}),  # the checksum no longer matches
        "checksum": json.dumps({**fields, "checksum": "0" * 64}),
        "garbage": "{not json",
        "legacy": f"static:{folder}|four",
        "extra": json.dumps({**fields, "extra": 1}),
    }[damage]
    _tamper(raw_db, location, tampered)
    for explicit in ({"embedder": None}, {"embedder": f"static:{folder}"}):
        with pytest.raises(IntegrityError) as info:
            open_mc(location, **explicit)
        assert info.value.details["key"] == META_KEY
    assert _record(location) == tampered  # refused, not repaired


def test_a_record_from_before_fingerprints_opens_and_gains_one(
        open_mc: OpenMc, location: str, tmp_path: Path, raw_db: Callable[[str], RawDb]) -> None:
    folder = write_static_model(tmp_path / "tiny")
    open_mc(location, embedder=f"static:{folder}").add("my dog")
    _tamper(raw_db, location, f"static:{folder}|8")  # what a store of the previous release records
    client = open_mc(location, embedder=None)
    assert client.search("pet", mode="vector", k=1).hits[0].cube.text == "my dog"
    assert EmbedderRecord.decode(_record(location) or "") == EmbedderRecord.of(StaticEmbedder(folder))
    _tamper(raw_db, location, "none")
    client.close()
    with pytest.raises(ConfigurationError):  # a legacy record of another space is still another space
        open_mc(location, embedder=f"static:{folder}")
