"""The LoCoMo benchmark of ``remember`` against a scripted extractor: evidence recall of turns and of the
facts extracted from them (a fact counts for the evidence among its source turns); no answer model."""

from __future__ import annotations

import json
from pathlib import Path

from bench.remember_locomo import run

from memcubed.testing.openai_server import ScriptedChat, serve_openai

_SAMPLE = {"sample_id": "conv-x", "conversation": {
    "speaker_a": "Ann", "speaker_b": "Bob", "session_1_date_time": "1:56 pm on 8 May, 2023",
    "session_1": [{"speaker": "Ann", "dia_id": "D1:1", "text": "I adopted a cat named Tom."},
                  {"speaker": "Bob", "dia_id": "D1:2", "text": "Nice, what colour is he?"},
                  {"speaker": "Ann", "dia_id": "D1:3", "text": "He is grey and loves the garden."}]},
    "qa": [{"question": "What is the name of Ann's cat?", "answer": "Tom", "evidence": ["D1:1"], "category": 4},
           {"question": "What colour is Tom?", "answer": "grey", "evidence": ["D1:3"], "category": 1}]}


def test_fact_recall_counts_the_evidence_among_a_facts_sources(tmp_path: Path) -> None:
    data = tmp_path / "locomo.json"
    data.write_text(json.dumps([_SAMPLE]), encoding="utf-8")
    reply = "t1 | Ann | Ann adopted a cat named Tom."  # only the first turn's fact: D1:3 has none
    with serve_openai(chat=ScriptedChat([reply])) as url:
        out = run(data, answers=False, embedder="none", base_url=url, model_name="scripted", answer_format="lines")
    table = out["by_category"]
    assert out["extractor"].startswith("scripted at http") and out["extract_format"] == "lines"
    assert out["turns"] == {"added": 3} and table["all"]["n"] == 2
    assert table["4"]["facts_recall@5"] == 100.0 and table["1"]["facts_recall@5"] == 0.0
    assert table["1"]["turns_recall@10"] == 100.0  # three turns: every one is in the top 10
    assert "memory" not in table["all"]  # no answer model ran
