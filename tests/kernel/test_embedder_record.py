"""The embedder record: it round-trips, a damaged one never decodes to another embedder, and fingerprints
follow the weights' content (the store-level rule runs on both backends in the conformance suite)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

import memcubed
from memcubed.backends.embedders.fingerprint import files_fingerprint, text_fingerprint
from memcubed.backends.embedders.local import DEFAULT_LOCAL_MODEL, TransformersEmbedder
from memcubed.backends.embedders.static import StaticEmbedder, distillation_fingerprint
from memcubed.errors import BackendUnavailable, IntegrityError
from memcubed.kernel.embedder_record import EmbedderRecord
from memcubed.testing.static_model import write_static_model

RECORD = EmbedderRecord("static:/models/tiny", 8, "sha256:" + "ab" * 32)


def test_a_record_round_trips_and_names_itself() -> None:
    assert EmbedderRecord.decode(RECORD.encode()) == RECORD
    assert RECORD.label == "static:/models/tiny|8"
    none = EmbedderRecord.of(None)
    assert EmbedderRecord.decode(none.encode()) == none and none.label == "none"


class _Unfingerprinted:
    """A caller's embedder from before fingerprints: name, dim, window and embed only."""

    name, dim, window_tokens = "mine:v1", 8, 0

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.ones((len(texts), self.dim), np.float32) / np.sqrt(self.dim)


def test_an_embedder_without_a_fingerprint_is_known_by_its_name(tmp_path: Path) -> None:
    record = EmbedderRecord.of(_Unfingerprinted())  # type: ignore[arg-type]
    assert record.fingerprint == text_fingerprint("name", "mine:v1")
    with memcubed.open(tmp_path / "m.db", embedder=_Unfingerprinted()) as mc:  # type: ignore[arg-type]
        mc.add("kept")
    with memcubed.open(tmp_path / "m.db", embedder=_Unfingerprinted()) as mc:  # type: ignore[arg-type]
        assert mc.search("kept", mode="vector", k=1).hits[0].cube.text == "kept"


def test_legacy_records_decode_without_a_fingerprint() -> None:
    assert EmbedderRecord.decode("local:sentence-transformers/all-MiniLM-L6-v2|384") == EmbedderRecord(
        "local:sentence-transformers/all-MiniLM-L6-v2", 384, "")
    assert EmbedderRecord.decode("static:/a|b/c|8").spec == "static:/a|b/c"  # a '|' in a folder name is kept
    assert EmbedderRecord.decode("none") == EmbedderRecord("none", 0, "")


@pytest.mark.parametrize("raw", [
    "", "local", "local|", "|384", "local|0", "local|-3", "local|3.5", "[1, 2]", "{", "null",
    json.dumps({"spec": "x", "dim": 8, "fingerprint": "f"}),  # no checksum
    json.dumps({**json.loads(RECORD.encode()), "dim": True}),  # a bool is no dimension
    json.dumps({**json.loads(RECORD.encode()), "dim": 8.0}),
    json.dumps({**json.loads(RECORD.encode()), "dim": 0}),
    json.dumps({**json.loads(RECORD.encode()), "spec": ""}),
    json.dumps({**json.loads(RECORD.encode()), "fingerprint": ""}),
    json.dumps({**json.loads(RECORD.encode()), "spec": "static:/models/other"}),
])
def test_damaged_records_are_integrity_errors(raw: str) -> None:
    with pytest.raises(IntegrityError) as info:
        EmbedderRecord.decode(raw)
    assert info.value.details["key"] == "embedder"


@given(position=st.integers(min_value=0), char=st.characters(codec="utf-8"))
def test_a_changed_character_never_decodes_to_another_record(position: int, char: str) -> None:
    encoded = RECORD.encode()
    at = position % len(encoded)
    damaged = encoded[:at] + char + encoded[at + 1:]
    try:
        decoded = EmbedderRecord.decode(damaged)
    except IntegrityError:
        return
    assert decoded == RECORD  # only a change JSON ignores (whitespace, an escape of the same text) decodes


def test_fingerprints_follow_file_content_not_path(tmp_path: Path) -> None:
    one = write_static_model(tmp_path / "one")
    two = write_static_model(tmp_path / "two")
    assert StaticEmbedder(one).fingerprint == StaticEmbedder(two).fingerprint
    write_static_model(two, shift=0.25)
    assert StaticEmbedder(one).fingerprint != StaticEmbedder(two).fingerprint
    assert StaticEmbedder(one, max_tokens=16).fingerprint != StaticEmbedder(one).fingerprint
    with pytest.raises(BackendUnavailable):
        files_fingerprint(tmp_path / "missing", ["model.safetensors"])
    assert text_fingerprint("ab", "c") != text_fingerprint("a", "bc")


def test_the_distilled_model_is_fingerprinted_without_distilling(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMCUBED_CACHE_DIR", str(tmp_path / "cache"))
    static = StaticEmbedder()
    assert static.fingerprint.startswith("sha256:") and static.fingerprint != distillation_fingerprint()
    assert not (tmp_path / "cache").exists()  # the recipe and the source weights decide it, not the table
    local = TransformersEmbedder(DEFAULT_LOCAL_MODEL)
    assert local.fingerprint.startswith("sha256:") and local.fingerprint != static.fingerprint
