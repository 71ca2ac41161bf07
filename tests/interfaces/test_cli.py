"""The CLI end to end through Typer's CliRunner, on real SQLite files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memcubed.interfaces.cli.app import app


@pytest.fixture
def cli(tmp_path: Path):
    runner = CliRunner()
    db = str(tmp_path / "cli.db")

    def invoke(*args: str, principal: str = "admin", embedder: str = "none", expect: int = 0):
        if not Path(db).exists():  # commands refuse a missing store; it keeps the embedder of its first use
            assert runner.invoke(app, ["--db", db, "--embedder", embedder, "init"]).exit_code == 0
        result = runner.invoke(app, ["--db", db, "--principal", principal, "--embedder", embedder, *args])
        assert result.exit_code == expect, (result.exit_code, result.output, result.stderr)
        return result

    return invoke


def _json(result) -> object:
    return json.loads(result.stdout)


def test_add_get_update_history_roundtrip(cli) -> None:
    cube_id = cli("add", "Alice prefers green tea", "--tag", "prefs").stdout.strip()
    shown = _json(cli("--json", "get", cube_id))
    assert shown["text"] == "Alice prefers green tea" and shown["tags"] == ["prefs"] and shown["version"] == 1
    cli("update", cube_id, "--text", "Alice prefers black tea", "--expected-version", "1")
    assert _json(cli("--json", "get", cube_id, "--version", "1"))["text"] == "Alice prefers green tea"
    history = _json(cli("--json", "history", cube_id))
    assert [(e["version"], e["op"]) for e in history] == [(1, "add"), (2, "update")]
    table = cli("history", cube_id).stdout
    assert "update" in table and "black tea" in table


def test_errors_map_to_exit_codes_and_json_bodies(cli) -> None:
    cube_id = cli("add", "a memory").stdout.strip()
    conflict = cli("--json", "update", cube_id, "--text", "x", "--expected-version", "5", expect=75)
    assert json.loads(conflict.stderr)["error"]["code"] == "version_conflict"
    assert "validation_error" in cli("add", "   ", expect=65).stderr
    assert "validation_error" in cli("get", "not-an-id", expect=65).stderr
    assert "not_found" in cli("get", "01a20e2a-123b-7000-8d33-73fcec333ad7", expect=66).stderr
    assert "unknown_principal" in cli("get", cube_id, principal="mallory", expect=77).stderr
    # the failed commands changed nothing
    assert _json(cli("--json", "get", cube_id))["version"] == 1


def test_rights_share_revoke_and_audit(cli) -> None:
    cube_id = cli("add", "secret plan").stdout.strip()
    cli("principal", "create", "bob")
    assert "not_found" in cli("get", cube_id, principal="bob", expect=66).stderr  # unreadable looks missing
    cli("share", cube_id, "bob", "--right", "read")
    assert _json(cli("--json", "get", cube_id, principal="bob"))["text"] == "secret plan"
    assert "access_denied" in cli("update", cube_id, "--text", "x", principal="bob", expect=77).stderr
    cli("revoke", cube_id, "bob")
    cli("get", cube_id, principal="bob", expect=66)
    names = [p["name"] for p in _json(cli("--json", "principal", "list"))]
    assert names == ["admin", "bob"]
    report = _json(cli("--json", "audit", "verify"))
    # admin, add, bob, bob's key, bob's denied update, share, revoke
    assert report["ok"] is True and report["records"] == 7
    ops = [r["op"] for r in _json(cli("--json", "audit", "log", "--cube", cube_id))]
    assert ops == ["add", "share", "denied", "revoke"]


def test_delete_and_forget(cli) -> None:
    cube_id = cli("add", "to be forgotten").stdout.strip()
    cli("delete", cube_id)
    cli("get", cube_id, expect=66)
    cli("forget", cube_id)
    history = _json(cli("--json", "history", cube_id))
    assert [e["op"] for e in history] == ["add", "delete", "forget"]
    assert all(e["cube"]["text"] is None for e in history)


def test_import_jsonl_is_validated_before_any_write(cli, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps({"text": f"memory {i}", "tags": ["bulk"]}) for i in range(30)) + "\n")
    assert _json(cli("--json", "import", str(good), "--batch", "7")) == {"imported": 30}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"text": "x", "importance": 3}) + "\n")
    result = cli("import", str(bad), expect=65)
    assert "bad.jsonl:2" in result.stderr
    hits = _json(cli("--json", "search", "memory", "-k", "100", "--mode", "lexical"))["hits"]
    assert len(hits) == 30  # nothing from the bad file


def test_search_hybrid_with_local_embedder(cli) -> None:
    for text in ("The cat sat on the mat", "Quarterly revenue grew by ten percent", "Dogs love long walks"):
        cli("add", text, embedder="local")
    result = _json(cli("--json", "search", "money earned by the company", "-k", "2", embedder="local"))
    assert result["hits"][0]["cube"]["text"] == "Quarterly revenue grew by ten percent"
    assert "vector" in result["hits"][0]["signals"]
    assert "mismatch" not in cli("search", "cat", embedder="local").stdout


def test_embedder_mismatch_is_a_configuration_error(cli) -> None:
    cli("add", "indexed without vectors")
    assert "configuration_error" in cli("search", "x", embedder="local", expect=78).stderr


def test_demo_locomo_imports_once_and_answers(cli, tmp_path: Path) -> None:
    sample = {
        "sample_id": "conv-test",
        "conversation": {
            "speaker_a": "Ann", "speaker_b": "Ben",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ann", "dia_id": "D1:1", "text": "I adopted a puppy named Biscuit yesterday!"},
                {"speaker": "Ben", "dia_id": "D1:2", "text": "Congrats! I started learning the violin."},
                {"speaker": "Ann", "dia_id": "D1:3", "text": "Look at my garden", "blip_caption": "red tulips"},
            ],
        },
        "qa": [
            {"question": "What is the name of Ann's puppy?", "answer": "Biscuit", "evidence": ["D1:1"], "category": 4},
            {"question": "Which instrument is Ben learning?", "answer": "violin", "evidence": ["D1:02"],
             "category": 1},
            {"question": "Broken evidence", "answer": "x", "evidence": ["D"], "category": 2},
        ],
    }
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps([sample]))
    first = cli("demo", "locomo", str(path), "-k", "1", embedder="local").stdout
    assert "Biscuit" in first and "3 turns" in first
    assert "evidence found in the top 1: 2/2" in first
    cli("demo", "locomo", str(path), "-k", "1", embedder="local")  # second run must not re-import
    hits = _json(cli("--json", "search", "tulips", "--namespace", "locomo-conv-test", embedder="local"))["hits"]
    assert [h["cube"]["source"]["ref"] for h in hits if "lexical" in h["signals"]] == ["D1:3"]
    assert len(hits) == 3


def test_cache_and_chat_inject_kv_and_refuse_stale_caches(cli, lm) -> None:
    cube_id = cli("add", "The spare key is hidden under the blue flower pot.").stdout.strip()
    act = _json(cli("--json", "cache", cube_id))
    assert act["kind"] == "activation" and act["derived_from"] == [{"id": cube_id, "version": 1}]
    answer = _json(cli("--json", "chat", " Where is the key?", "--activation", act["id"], "--max-new-tokens", "4",
                       "--compare"))
    assert answer["activation_id"] == act["id"] and answer["used"] == [cube_id]
    assert answer["prefix_tokens"] == answer["reused_tokens"] == act["meta"]["tokens"]
    assert answer["reread_ttft_ms"] > 0
    recalled = _json(cli("--json", "chat", "Where is the spare key?", "--max-new-tokens", "2", "--remember"))
    assert recalled["used"] == [cube_id] and recalled["via"] == "kv" and len(recalled["remembered"]) == 2
    assert "recalled nothing" in cli("chat", "Hello", "-k", "0", "--max-new-tokens", "2").stdout
    cli("update", cube_id, "--text", "The key is gone.")
    assert "conflict" in cli("chat", "Where?", "--activation", act["id"], expect=75).stderr
    assert "configuration_error" in cli("cache", cube_id, "--mode", "fuzzy", expect=78).stderr


def test_cache_in_the_background_then_worker_and_jobs_commands(cli, lm) -> None:
    cube_id = cli("add", "The night bus leaves from platform four.").stdout.strip()
    job = _json(cli("--json", "cache", cube_id, "--background"))
    assert job["state"] == "queued" and job["kind"] == "cache"
    assert "queued" in cli("jobs", "list").stdout
    assert _json(cli("--json", "jobs", "list", "--state", "queued"))[0]["id"] == job["id"]
    cli("jobs", "list", "--state", "asleep", expect=65)
    (ran,) = _json(cli("--json", "worker", "--once"))
    assert ran["id"] == job["id"] and ran["state"] == "succeeded" and ran["done"] == ran["total"] == 1
    waited = _json(cli("--json", "jobs", "wait", job["id"]))
    assert waited["result"]["cube_id"] == ran["result"]["cube_id"]
    assert _json(cli("--json", "get", ran["result"]["cube_id"]))["kind"] == "activation"
    other = _json(cli("--json", "cache", cube_id, "--background"))
    assert "cancelled" in cli("jobs", "cancel", other["id"]).stdout
    assert cli("jobs", "wait", other["id"], expect=1).stdout.count("cancelled") >= 1
    cli("jobs", "show", other["id"], principal="nobody", expect=77)


def test_list_show_and_submit(cli) -> None:
    ids = [cli("add", f"note {i}", "--tag", "n").stdout.strip() for i in range(3)]
    listed = _json(cli("--json", "list", "--limit", "2"))
    assert [c["id"] for c in listed] == ids[::-1][:2]
    assert "note 0" in cli("list", "--offset", "2").stdout
    assert _json(cli("--json", "principal", "show"))["name"] == "admin"
    job = _json(cli("--json", "jobs", "submit", "cache", json.dumps({"cube_ids": ids[:1]})))
    assert job["kind"] == "cache" and job["state"] == "queued"
    cli("jobs", "submit", "cache", "[1]", expect=65)


@pytest.mark.parametrize("model", ["local:/etc", "../x", "HuggingFaceTB/SmolLM2-360M-Instruct"])
def test_the_cli_takes_model_ids_only(cli, model: str) -> None:
    cube_id = cli("add", "the ferry leaves at nine").stdout.strip()
    for args in (["cache", cube_id], ["cache", cube_id, "--background"], ["chat", "when?"], ["generate", "x"],
                 ["consolidate", cube_id], ["recall", "x"]):
        refused = cli(*args, "--model", model, expect=65)
        assert "configured model ids: local" in refused.stderr and "/etc" not in refused.stderr
    assert _json(cli("--json", "jobs", "list")) == []
