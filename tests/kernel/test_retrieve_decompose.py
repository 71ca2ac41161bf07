"""The LLM decomposition hook of hybrid search, against a scripted OpenAI-compatible model: its sub-queries
rank memories the question alone misses, it sees the question and no memory, and a failing or malformed answer
falls back to the offline split (a search never fails for its decomposer)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import memcubed
from memcubed.engines.text import TextConfig
from memcubed.engines.text.decompose import parse_decomposition
from memcubed.settings import Settings
from memcubed.testing.conformance.fixtures import OpenMc
from memcubed.testing.openai_server import Script, ScriptedChat, serve_openai

SWEDEN = "Caroline moved here from Sweden four years ago"


@contextmanager
def decomposing(open_mc: OpenMc, path: Path, script: ScriptedChat, plan: Script | None = None
                ) -> Iterator[memcubed.Memcubed]:
    with serve_openai(chat=script, script=plan) as url:
        conf = Settings(models={"local": "local", "splitter": "openai:scripted"}, model_base_url=url,
                        decomposer="splitter")
        mc = open_mc(path, embedder="none", settings=conf)
        mc.kernel.text.config = TextConfig(split_weight=1.0, router=False)
        for text in (SWEDEN, "Melanie painted a sunrise over the lake", "The weather was cold"):
            mc.add(text)
        yield mc


def _split(result: memcubed.SearchResult) -> list[str]:
    return [hit.cube.text or "" for hit in result.hits if "split" in hit.signals]


def test_the_models_sub_queries_rank_what_the_question_misses(open_mc: OpenMc, db_path: Path) -> None:
    script = ScriptedChat(['{"queries": ["country Caroline moved from", "Sweden"]}'])
    with decomposing(open_mc, db_path, script) as mc:
        result = mc.search("Where is she originally from?", mode="hybrid")
        assert _split(result) == [SWEDEN]
        shown = script.received[0]
        assert json.loads(shown[1]["content"]) == {"question": "Where is she originally from?"}
        assert not any("Sweden" in m["content"] or "Melanie" in m["content"] for m in shown)  # no memory shown


def test_a_malformed_or_failing_decomposer_falls_back_to_the_offline_split(open_mc: OpenMc, db_path: Path) -> None:
    script = ScriptedChat(["Sure! Here are some queries: Sweden", '{"queries": "Sweden"}'])
    with decomposing(open_mc, db_path, script, Script(statuses=[])) as mc:
        for _ in range(2):  # prose, then the wrong type: neither is used
            assert _split(mc.search("Where is she originally from?", mode="hybrid")) == []
        script.replies = ['{"queries": []}']
        both = mc.search("What did Melanie and Caroline do?", mode="hybrid")  # offline split by names
        assert set(_split(both)) >= {SWEDEN, "Melanie painted a sunrise over the lake"}


def test_an_upstream_error_never_fails_the_search(open_mc: OpenMc, db_path: Path) -> None:
    script = ScriptedChat(['{"queries": ["Sweden"]}'])
    with decomposing(open_mc, db_path, script, Script(statuses=[500, 500, 500, 500, 500])) as mc:
        result = mc.search("Where is Caroline from?", mode="hybrid")
        assert result.hits and result.hits[0].cube.text == SWEDEN


def test_parse_decomposition_is_strict_and_bounded() -> None:
    assert parse_decomposition('```json\n{"queries": ["a  b", "a b", " ", "c"]}\n```') == ["a b", "c"]
    assert parse_decomposition('{"queries": ["' + "x" * 1000 + '"]}') == ["x" * 300]
    assert parse_decomposition(json.dumps({"queries": [str(i) for i in range(10)]})) == ["0", "1", "2", "3"]
    for bad in ("", "no json", '{"queries": [1]}', '{"q": ["a"]}', '["a"]', '{"queries": ["a"'):
        assert parse_decomposition(bad) is None
