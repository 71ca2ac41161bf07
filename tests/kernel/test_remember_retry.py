"""Retries of a failed extraction sample (issue 15): a greedy model answers a failed prompt the same way each
time, so each retry asks at ``extract_retry_temperature`` with a seed derived from its turns and try
(``retry_seed``), over real HTTP to a scripted upstream; the same turns give the same seeds, requests and
facts in every run, and a temperature of 0 keeps retries greedy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memcubed.engines.text.extract import PromptTurn, retry_seed
from memcubed.schemas.jobs import JobState
from memcubed.settings import Settings
from memcubed.testing.conformance.fixtures import OpenMc
from memcubed.testing.conformance.remember import T0, facts, turn
from memcubed.testing.openai_server import ScriptedChat, serve_openai

WORDS = "I adopted a cat named Tom."


def _run(open_mc: OpenMc, path: Path, **settings: Any) -> tuple[ScriptedChat, list[dict[str, Any]], list[str]]:
    """Remember one turn against an upstream whose first answer is prose; run the retry; return the script,
    the request bodies it was sent and the facts' texts."""
    script = ScriptedChat(["Sure! Alice adopted a cat.", facts(("Alice", "Alice adopted a cat named Tom.", ["t1"]))])
    seen: list[dict[str, Any]] = []
    with serve_openai(chat=script, seen=seen) as url:
        mc = open_mc(path, embedder="none", settings=Settings(
            models={"local": "local", "extractor": "openai:scripted"}, model_base_url=url, extractor="extractor",
            **settings))
        result = mc.remember([turn(1, WORDS)])
        assert not result.extracted and result.retry_job is not None
        [done] = mc.run_jobs()
        assert done.state is JobState.SUCCEEDED
        texts = [c.text or "" for c in mc.list_cubes(filters={"tags": ["fact"]})]
    return script, seen, texts


def test_a_retry_samples_from_a_seed_of_its_turns_and_try(open_mc: OpenMc, tmp_path: Path) -> None:
    script, seen, texts = _run(open_mc, tmp_path / "a.db")
    seed = retry_seed([PromptTurn(key="t1", speaker="Alice", time=T0.replace(minute=1), text=WORDS)], 2)
    assert script.sampling == [(0.0, None), (0.7, seed)]
    assert seen[0]["temperature"] == 0.0 and "seed" not in seen[0]  # the first try is greedy
    assert (seen[1]["temperature"], seen[1]["seed"]) == (0.7, seed)
    assert seen[1]["messages"] == seen[0]["messages"]  # the same prompt: only the sampling differs
    assert texts == ["Alice adopted a cat named Tom."]
    # Another run gives the same requests and the same facts.
    again, seen_again, texts_again = _run(open_mc, tmp_path / "b.db")
    assert again.sampling == script.sampling and seen_again == seen and texts_again == texts


def test_seeds_differ_by_try_and_by_turn_and_fit_every_api() -> None:
    one = [PromptTurn(key="t1", speaker="Alice", time=T0, text=WORDS)]
    other = [PromptTurn(key="t1", speaker="Alice", time=T0, text=WORDS + " He is grey.")]
    seeds = {retry_seed(one, 2), retry_seed(one, 3), retry_seed(other, 2), retry_seed(one[:0], 2)}
    assert len(seeds) == 4 and all(0 <= s < 2**31 for s in seeds)
    assert retry_seed(one, 2) == retry_seed([PromptTurn(key="t9", speaker="Alice", time=T0, text=WORDS)], 2)


def test_a_temperature_of_zero_keeps_retries_greedy(open_mc: OpenMc, db_path: Path) -> None:
    script, seen, texts = _run(open_mc, db_path, extract_retry_temperature=0.0)
    assert script.sampling == [(0.0, None), (0.0, None)] and all("seed" not in body for body in seen)
    assert texts == ["Alice adopted a cat named Tom."]
