"""A remembered conversation in a bundle: facts go only with the turns they came from, and keep their validity
intervals, their contradiction and their lineage across the import, so both times still answer there."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import memcubed
from memcubed.testing.conformance.fixtures import OpenMc
from memcubed.testing.conformance.remember import T0, facts, turn
from memcubed.testing.openai_server import ScriptedChat, serve_openai


def test_remembered_facts_travel_with_their_turns_and_keep_their_times(open_mc: OpenMc, tmp_path: Path) -> None:
    script = ScriptedChat([facts(("Alice", "Alice lives in Paris.", ["t1"])),
                           facts(("Alice", "Alice lives in Berlin.", ["t1"])), '{"action": "contradict", "target": 1}'])
    moved = T0 + timedelta(days=30)
    with serve_openai(chat=script) as url:
        origin = open_mc(tmp_path / "origin.db", embedder="none", settings=memcubed.Settings(
            models={"local": "local", "extractor": "openai:x"}, model_base_url=url, extractor="extractor"))
        origin.create_principal("alice")
        alice = origin.as_principal("alice")
        alice.remember([turn(1, "I live in Paris.", at=T0)])
        alice.remember([turn(2, "I moved to Berlin.", at=moved)])
    # Facts alone are derived cubes without their sources: none goes in.
    only_facts = alice.export_bundle(io.BytesIO(), tags=["fact"])
    assert only_facts.exported == [] and len(only_facts.left_out) == 2
    buffer = io.BytesIO()
    report = alice.export_bundle(buffer, namespace="default")
    assert report.cubes == 4 and report.left_out == []
    target = open_mc(tmp_path / "target.db", embedder="none")
    target.create_principal("carol")
    carol = target.as_principal("carol")
    imported = carol.import_bundle(buffer.getvalue(), namespace="moved")
    assert imported.cubes == 4

    def lives(**filters: object) -> list[str]:
        found = carol.search("Alice lives", namespace="moved", mode="lexical", filters={"tags": ["fact"], **filters})
        return [hit.cube.text or "" for hit in found.hits]

    assert lives(true_at=T0 + timedelta(days=1)) == ["Alice lives in Paris."]
    assert lives(true_at=moved + timedelta(days=1)) == ["Alice lives in Berlin."]
    cubes = {c.text: c for c in carol.list_cubes(namespace="moved", limit=10)}
    paris, berlin = cubes["Alice lives in Paris."], cubes["Alice lives in Berlin."]
    assert (paris.valid_from, paris.valid_to) == (T0, moved) and (berlin.valid_from, berlin.valid_to) == (moved, None)
    assert [cubes[t].id for t in ("Alice: I moved to Berlin.",)] == [r.id for r in berlin.derived_from]
    assert [h.op for h in carol.history(paris.id)] == ["add", "contradict"]  # its history came along
