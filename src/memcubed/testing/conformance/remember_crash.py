"""Conformance: ``remember`` never loses an extracted fact. The turns, the facts resolved from them (each
with its audit record) and the retry job of a failed batch commit in one write, so a process killed while
the facts are being resolved, or a write refused half-way, leaves the store as it was: the unacknowledged
call is resent and then stores everything. No subscriber sees an event of a write that rolled back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import memcubed
from memcubed.errors import BudgetExceeded, StorageError
from memcubed.settings import Settings
from memcubed.testing.backends import RawDb
from memcubed.testing.conformance.fixtures import OpenMc
from memcubed.testing.conformance.remember import T0, facts, turn
from memcubed.testing.openai_server import ScriptedChat, serve_openai

__all__ = [
    "test_a_process_killed_while_facts_are_resolved_leaves_all_or_nothing",
    "test_a_refused_fact_insert_leaves_the_store_and_the_subscribers_as_they_were",
    "test_a_remember_over_the_quota_at_its_kth_fact_stores_nothing",
]

_TURNS = [turn(2, "I adopted a cat named Tom."), turn(3, "I moved to Berlin.")]
REMEMBER_CHILD = """
# A process that remembers turns as alice with a scripted extractor: argv = store, upstream URL, turns (JSON).
import json, sys
import memcubed
from memcubed.settings import Settings
where, url, turns = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
settings = Settings(models={"local": "local", "extractor": "openai:scripted"}, model_base_url=url,
                    extractor="extractor")
with memcubed.open(where, embedder="none", settings=settings) as mc:
    mc.as_principal("alice").remember(turns)
"""


class _Upstream:
    """The extractor and resolver: Paris, then a cat and Berlin (Berlin contradicts Paris); ``hang`` makes the
    resolver's Berlin call wait (``asked`` set) until ``release``."""

    def __init__(self) -> None:
        self.hang = False
        self.asked, self.release = threading.Event(), threading.Event()

    def __call__(self, messages: Any) -> str:
        body = str(messages[-1]["content"])
        if "A new fact arrived" not in str(messages[0]["content"]):  # an extraction
            if "Paris" in body:
                return facts(("Alice", "Alice lives in Paris.", ["t1"]))
            return facts(("Tom", "Alice has a cat named Tom.", ["t1"]), ("Alice", "Alice lives in Berlin.", ["t2"]))
        asked = json.loads(body)
        if "Berlin" not in asked["new"]:
            return '{"action": "add"}'
        if self.hang:
            self.asked.set()
            self.release.wait(120)
            return "never read"
        target = next(n for n, text in asked["known"].items() if "Paris" in text)
        return json.dumps({"action": "contradict", "target": int(target)})


def _alice_in_paris(mc: memcubed.Memcubed) -> memcubed.Memcubed:
    """Alice, with her first turn (and its Paris fact) remembered: what every crash test starts from."""
    mc.create_principal("alice")
    alice = mc.as_principal("alice")
    alice.remember([turn(1, "I live in Paris.", at=T0)])
    return alice


def extractor_settings(url: str, **fields: Any) -> Settings:
    """Settings whose extractor is the scripted model served at ``url`` (``fields`` override the rest)."""
    return Settings(models={"local": "local", "extractor": "openai:scripted"}, model_base_url=url,
                    extractor="extractor", **fields)


def _state(mc: memcubed.Memcubed, raw: RawDb) -> tuple[Any, ...]:
    """What a rolled-back write must not change: row counts, every cube as stored, the audit log."""
    cubes = mc.list_cubes(filters={"states": ["active", "deleted"]}, limit=1000)
    return (raw.counts(), sorted((c.id, c.version, c.text, c.valid_to) for c in cubes),
            [(r.seq, r.op) for r in mc.audit(limit=1000)], mc.list_jobs())


def orphan_turns(mc: memcubed.Memcubed) -> list[str]:
    """Stored turns that no fact came from and no queued extract job names: turns whose retry was lost."""
    turns = {c.id for c in mc.list_cubes(filters={"tags": ["turn"]}, limit=1000)}
    covered = {ref.id for f in mc.list_cubes(filters={"tags": ["fact"]}, limit=1000) for ref in f.derived_from}
    queued = {cube_id for job in mc.list_jobs(state="queued") if job.kind == "extract"
              for cube_id in job.params["cube_ids"]}
    return sorted(turns - covered - queued)


def _check_all_stored(alice: memcubed.Memcubed, result: Any) -> None:
    assert [t.action for t in result.turns] == ["added", "added"] and result.extracted is True
    assert [(f.action, f.statement) for f in result.facts] == [
        ("add", "Alice has a cat named Tom."), ("contradict", "Alice lives in Berlin.")]
    paris = alice.get(result.facts[1].target or "")
    assert paris.text == "Alice lives in Paris." and paris.valid_to == T0 + timedelta(minutes=3)
    assert orphan_turns(alice) == [] and alice.list_jobs() == []


def test_a_process_killed_while_facts_are_resolved_leaves_all_or_nothing(
        open_mc: OpenMc, location: str, raw_db: Callable[[str], RawDb]) -> None:
    upstream = _Upstream()
    with serve_openai(chat=ScriptedChat([upstream] * 20)) as url:
        mc = open_mc(location, embedder="none", settings=extractor_settings(url))
        alice = _alice_in_paris(mc)
        before = _state(mc, raw_db(location))
        upstream.hang = True
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        child = subprocess.Popen([sys.executable, "-c", REMEMBER_CHILD, location, url, json.dumps(_TURNS, default=str)],
                                 env=env)
        try:
            # The child holds its one write open, the turns and the cat fact inserted, Berlin being resolved.
            assert upstream.asked.wait(300), "the child never asked the resolver"
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        finally:
            upstream.release.set()
            if child.poll() is None:
                child.kill()
        upstream.hang = False
        assert _state(mc, raw_db(location)) == before and orphan_turns(alice) == []
        assert mc.verify_audit().ok
        _check_all_stored(alice, alice.remember(_TURNS))  # the client resends what was never acknowledged
        assert mc.verify_audit().ok


def test_a_refused_fact_insert_leaves_the_store_and_the_subscribers_as_they_were(
        open_mc: OpenMc, location: str, raw_db: Callable[[str], RawDb]) -> None:
    upstream = _Upstream()
    with serve_openai(chat=ScriptedChat([upstream] * 20)) as url:
        mc = open_mc(location, embedder="none", settings=extractor_settings(url))
        alice = _alice_in_paris(mc)
        raw = raw_db(location)
        before = _state(mc, raw)
        seen: list[str] = []
        unsubscribe = mc.kernel.events.subscribe(lambda event: seen.append(event.kind))
        raw.refuse_inserts("cube_derivations")  # a fact is derived from its turns: its insert fails
        with pytest.raises(StorageError):
            alice.remember(_TURNS)
        assert _state(mc, raw) == before and seen == [] and mc.verify_audit().ok
        raw.allow_inserts("cube_derivations")
        _check_all_stored(alice, alice.remember(_TURNS))
        unsubscribe()
        assert "add" in seen and "contradict" in seen and mc.verify_audit().ok


@pytest.mark.parametrize("kth", [1, 2])
def test_a_remember_over_the_quota_at_its_kth_fact_stores_nothing(
        open_mc: OpenMc, location: str, raw_db: Callable[[str], RawDb], kth: int) -> None:
    upstream = _Upstream()
    with serve_openai(chat=ScriptedChat([upstream] * 20)) as url:
        # Paris's turn and fact, then two turns fit; the kth new fact is one cube too many.
        mc = open_mc(location, embedder="none", settings=extractor_settings(url, quota_cubes=3 + kth))
        alice = _alice_in_paris(mc)
        before = _state(mc, raw_db(location))
        seen: list[str] = []
        mc.kernel.events.subscribe(lambda event: seen.append(event.kind))
        with pytest.raises(BudgetExceeded):
            alice.remember(_TURNS)
        # The cat fact's own write (kth 2) ended before the refusal, inside the outer one: it rolled back too.
        assert _state(mc, raw_db(location)) == before and orphan_turns(alice) == [] and seen == []
        assert mc.verify_audit().ok
