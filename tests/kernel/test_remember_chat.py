"""``chat`` answers from conversation memory: facts that hold now, each with the turn it came from as
evidence; ``remember_conversations`` remembers every conversation passed through, once per turn."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from memcubed.settings import Settings
from memcubed.testing.conformance.fixtures import OpenMc
from memcubed.testing.conformance.remember import T0, facts, turn
from memcubed.testing.openai_server import ScriptedChat, serve_openai


def test_chat_uses_facts_valid_now_with_their_source_turns(open_mc: OpenMc, db_path: Path) -> None:
    script = ScriptedChat([facts(("Alice", "Alice lives in Paris.", ["t1"])),
                           facts(("Alice", "Alice lives in Berlin.", ["t1"])), '{"action": "contradict", "target": 1}'])
    answers = ScriptedChat(["You live in Berlin."])
    with serve_openai(chat=script) as url:
        settings = Settings(models={"local": "local", "extractor": "openai:x"}, model_base_url=url,
                            extractor="extractor")
        mc = open_mc(db_path, embedder="none", settings=settings)
        mc.create_principal("alice")
        alice = mc.as_principal("alice")
        paris = alice.remember([turn(1, "I live in Paris.", at=T0)]).facts[0]
        moved = alice.remember([turn(2, "I moved to Berlin.", at=T0 + timedelta(days=30))])
        result = alice.chat("Where does Alice live?", lm=answers, k=5, tags=["fact"])
    berlin, source = moved.facts[0].cube_id, moved.turns[0].cube_id
    assert berlin is not None and source is not None
    assert result.text == "You live in Berlin." and result.evidence == {berlin: [source]}
    assert paris.cube_id not in result.used and set(result.used) == {berlin, source}
    prompt = answers.received[0][0]["content"]
    assert "> Alice lives in Berlin." in prompt and "> Alice: I moved to Berlin." in prompt
    assert 'source="conversation:c1#2"' in prompt and "Paris" not in prompt


def test_remember_conversations_stores_each_turn_of_a_growing_conversation_once(open_mc: OpenMc,
                                                                                db_path: Path) -> None:
    mc = open_mc(db_path, embedder="none", settings=Settings(remember_conversations=True))
    mc.create_principal("alice")
    alice = mc.as_principal("alice")
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "My sister is called Ana."}]
    first = alice.chat(history, lm=ScriptedChat(["Nice name."]), k=0)
    history += [{"role": "assistant", "content": "Nice name."}, {"role": "user", "content": "She lives in Porto."}]
    second = alice.chat(history, lm=ScriptedChat(["Porto is lovely."]), k=0)
    texts = [alice.get(i).text for i in [*first.remembered, *second.remembered]]
    assert texts == ["alice: My sister is called Ana.", "assistant: Nice name.", "alice: She lives in Porto.",
                     "assistant: Porto is lovely."]
    cubes = [alice.get(i) for i in second.remembered]
    assert {c.source.uri for c in cubes} == {alice.get(first.remembered[0]).source.uri}
    assert [c.source.ref for c in cubes] == ["2", "3"] and all(c.source.occurred_at for c in cubes)
