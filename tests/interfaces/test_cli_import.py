"""LoCoMo import: idempotent for one principal, and unaffected by another principal squatting its ids."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import memcubed
from memcubed.datasets.locomo import load_locomo
from memcubed.interfaces.cli.bulk import import_locomo

SAMPLE = {
    "sample_id": "conv-squat",
    "conversation": {
        "speaker_a": "Ann", "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ann", "dia_id": "D1:1", "text": "I adopted a puppy named Biscuit yesterday!"},
            {"speaker": "Ben", "dia_id": "D1:2", "text": "Congrats! I started learning the violin."},
        ],
    },
    "qa": [],
}


def test_a_squatted_importer_id_blocks_nothing(tmp_path: Path) -> None:
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps([SAMPLE]))
    conversations = load_locomo(path)
    with memcubed.open(tmp_path / "store.db", embedder="none") as admin:
        admin.create_principal("alice")
        admin.create_principal("mallory")
        alice, mallory = admin.as_principal("alice"), admin.as_principal("mallory")
        # Mallory predicts the importer's ids (uuid5 of the sample and turn) and takes them first.
        for dia_id in ("D1:1", "D1:2"):
            mallory.add("squatted", id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"locomo:conv-squat:{dia_id}")))
        assert import_locomo(alice, conversations) == 2
        assert import_locomo(alice, conversations) == 0  # idempotent for the same owner
        texts = sorted(c.text or "" for c in alice.list_cubes(namespace="locomo-conv-squat"))
        assert len(texts) == 2 and all("Biscuit" in t or "violin" in t for t in texts)
        assert all(c.text == "squatted" for c in mallory.list_cubes())  # hers stay hers, untouched
