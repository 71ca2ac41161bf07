"""What the README promises holds: its Python snippets run as written (in order, in one folder, as a reader
would paste them), with the small LoRA schedule for the long parameter example and a real local server for
the OpenAI client example; and the first lines still show ``make run`` and ``make test``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from tests.kernel.test_parameter import CONTROL, FAST

import memcubed
from memcubed.testing.openai_server import EchoChat, serve_openai
from memcubed.testing.server import running_server

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def snippets() -> list[str]:
    """The README's Python blocks; an indented block continues the one before it (same ``with`` body)."""
    found: list[str] = []
    for block in BLOCK.findall(README.read_text()):
        if found and block[:1].isspace():
            found[-1] += block
        else:
            found.append(block)
    return found


def test_the_readme_opens_with_make_run_and_make_test() -> None:
    head = README.read_text().splitlines()[:12]
    assert any(line.startswith("make run") for line in head) and any(line.startswith("make test") for line in head)


def test_the_snippets_are_found() -> None:
    found = snippets()
    assert len(found) == 5
    assert "OpenAI(" in found[0] and "mc.search" in found[1] and "mc.remember" in found[2] and \
        "mc.cache" in found[3] and "consolidate" in found[4]


def _run(code: str, where: Path, monkeypatch: pytest.MonkeyPatch, scope: dict[str, Any] | None = None
         ) -> dict[str, Any]:
    """Run ``code`` in ``where``, in ``scope`` (one reader's session: later snippets use earlier imports)."""
    monkeypatch.chdir(where)
    scope = {"__name__": "readme"} if scope is None else scope
    exec(compile(code, str(README), "exec"), scope)
    return scope


def test_the_openai_client_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    with serve_openai(chat=EchoChat(), seen=seen) as upstream, \
            running_server(tmp_path / "s.db", env={"MEMCUBED_UPSTREAM_BASE_URL": upstream}) as srv:
        code = snippets()[0].replace("http://127.0.0.1:8000", srv.url).replace("mck_...", str(srv.admin_key))
        _run(code, tmp_path, monkeypatch)
    assert seen and seen[-1]["messages"][-1]["content"] == "what do I drink?"


def test_the_python_activation_and_parameter_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    tour, remember, activation, parameter = snippets()[1:]
    scope = _run(tour, tmp_path, monkeypatch)
    _run(remember, tmp_path, monkeypatch, scope)
    assert scope["result"].extracted is False and scope["result"].reason
    assert [h.cube.text for h in scope["hits"]][:1] == ["Alice: I moved to Berlin last month."]  # the speaker is kept
    _run(activation, tmp_path, monkeypatch, scope)
    assert scope["out"].text.strip(), "generate with the activation cube answered nothing"
    assert scope["reply"].text.strip() and scope["reply"].used
    # The long one with the small schedule and control set (the README says how long the default takes).
    small = {"mc.consolidate([fact.id],": f"mc.consolidate([fact.id], config={FAST!r}, control={CONTROL!r},",
             "mc.recompile(par.id)": f"mc.recompile(par.id, control={CONTROL!r})"}
    for old, new in small.items():
        assert old in parameter
        parameter = parameter.replace(old, new)
    _run(parameter, tmp_path, monkeypatch, scope)
    assert scope["par"].kind.value == "parameter" and scope["par"].version > 1  # recompiled
    assert "step" in capsys.readouterr().out  # the progress it promises
    with memcubed.open(tmp_path / "memories.db") as mc:
        assert mc.get(scope["par"].id).state.value == "archived"
