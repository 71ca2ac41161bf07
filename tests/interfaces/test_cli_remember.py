"""``memcubed remember`` reads JSON turns from a file or stdin; ``memcubed extract`` says what it lacks."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from memcubed.interfaces.cli.app import app
from memcubed.testing.conformance.remember import facts
from memcubed.testing.openai_server import ScriptedChat, serve_openai

TURNS = [{"speaker": "Alice", "text": "I adopted a cat named Tom.", "time": "2023-05-01T10:00:00Z",
          "conversation_id": "c1", "session_id": "s1", "turn_id": "1"},
         {"speaker": "Bob", "role": "assistant", "text": "Lovely!", "conversation_id": "c1", "turn_id": "2"}]


def test_remember_from_stdin_and_file(tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "cli.db")
    assert runner.invoke(app, ["--db", db, "--embedder", "none", "init"]).exit_code == 0
    base = ["--db", db, "--embedder", "none"]
    first = runner.invoke(app, [*base, "--json", "remember", "-"], input=json.dumps(TURNS))
    assert first.exit_code == 0, first.output
    body = json.loads(first.stdout)
    assert [t["action"] for t in body["turns"]] == ["added", "added"]
    assert body["extracted"] is False and "no extractor configured" in body["reason"]
    path = tmp_path / "turns.json"
    path.write_text(json.dumps({"turns": TURNS, "namespace": "default"}), encoding="utf-8")
    again = runner.invoke(app, [*base, "remember", str(path), "--no-extract"])
    assert again.exit_code == 0 and "0 added, 2 already known" in again.stdout
    assert "not extracted (extraction not asked for" in again.stdout
    turn_id = body["turns"][0]["cube_id"]
    missing = runner.invoke(app, [*base, "--json", "extract", turn_id])
    assert missing.exit_code != 0 and json.loads(missing.stderr)["error"]["code"] == "configuration_error"
    for bad, code in (("not json", "validation_error"), ('{"turns": [], "extra": 1}', "validation_error"),
                      ('[{"speaker": "A", "text": "x", "conversation_id": "c", "turn_id": "1", "time": "2023-01-01"}]',
                       "validation_error")):
        refused = runner.invoke(app, [*base, "--json", "remember"], input=bad)
        assert refused.exit_code == 65 and json.loads(refused.stderr)["error"]["code"] == code, bad
    unreadable = runner.invoke(app, [*base, "--json", "remember", str(tmp_path / "absent.json")])
    assert json.loads(unreadable.stderr)["error"]["code"] == "not_found"


def test_chat_shows_where_every_memory_it_used_came_from(tmp_path: Path) -> None:
    script = ScriptedChat([facts(("Tom", "Alice has a grey cat named Tom.", ["t1"])), "Tom is grey."])
    with serve_openai(chat=script) as url:
        env = {"MEMCUBED_MODELS": json.dumps({"echo": "openai:m", "extractor": "openai:x"}),
               "MEMCUBED_DEFAULT_MODEL": "echo", "MEMCUBED_MODEL_BASE_URL": url, "MEMCUBED_EXTRACTOR": "extractor"}
        runner = CliRunner()
        base = ["--db", str(tmp_path / "cli.db"), "--embedder", "none"]
        assert runner.invoke(app, [*base, "init"], env=env).exit_code == 0
        stored = runner.invoke(app, [*base, "--json", "remember", "-"], input=json.dumps(TURNS[:1]), env=env)
        assert stored.exit_code == 0, stored.output
        body = json.loads(stored.stdout)
        fact, source = body["facts"][0]["cube_id"], body["turns"][0]["cube_id"]
        shown = runner.invoke(app, [*base, "chat", "What colour is the cat Tom?", "-k", "2"], env=env)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == "Tom is grey."
    # The fact names its conversation and turn, and the turn cube it came from; the turn names itself.
    assert f"  {fact}  extracted:c1#1 <- turns {source[:13]}" in lines
    assert f"  {source}  conversation:c1#1" in lines


def test_get_and_search_in_event_time_and_record_time(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--db", str(tmp_path / "cli.db"), "--embedder", "none"]
    assert runner.invoke(app, [*base, "init"]).exit_code == 0
    later = {**TURNS[0], "turn_id": "3", "text": "I adopted a second cat named Max.", "time": "2023-07-01T10:00:00Z"}
    stored = runner.invoke(app, [*base, "--json", "remember", "-"], input=json.dumps([TURNS[0], later]))
    first, second = (t["cube_id"] for t in json.loads(stored.stdout)["turns"])

    def found(*options: str) -> list[str]:
        result = runner.invoke(app, [*base, "--json", "search", "adopted cat", "--mode", "lexical", *options])
        assert result.exit_code == 0, result.output
        return [hit["cube"]["id"] for hit in json.loads(result.stdout)["hits"]]

    assert found("--true-at", "2023-06-01T00:00:00") == [first]  # read as UTC; Max came later
    assert sorted(found()) == sorted([first, second])
    assert found("--as-known-at", "2001-01-01T00:00:00") == []  # nothing was stored yet then
    assert sorted(found("--question-date", "2023-07-08T00:00:00")) == sorted([first, second])  # accepted
    got = runner.invoke(app, [*base, "--json", "get", second, "--true-at", "2023-07-02T00:00:00"])
    assert got.exit_code == 0 and json.loads(got.stdout)["id"] == second
    early = runner.invoke(app, [*base, "--json", "get", second, "--true-at", "2023-06-01T00:00:00"])
    assert early.exit_code != 0 and json.loads(early.stderr)["error"]["code"] == "not_found"
