"""Long memories are embedded by window (issue 16): a fact past the embedder's window is found by vector search,
on the exact and the approximate path, and every change or purge of the memory acts on all of its windows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import memcubed
from memcubed.testing.backends import Backend

FILLER = ("We talked about the weather, the traffic downtown, a new cafe near the station, the football "
          "results and what to cook for dinner on Sunday. ")
FACT = "The spare key to the garden shed is hidden under the blue flowerpot by the back door."
QUERY = "where is the spare key to the garden shed hidden?"
OTHERS = ["I bought new running shoes for the marathon.", "My sister moved to Lisbon last spring.",
          "The violin lessons start on Tuesday evenings.", "We planted tomatoes and basil in April.",
          "The bicycle needs a new chain and brakes.", "I am saving money for a house by the sea.",
          "Debugging the python service took all afternoon.", "Our cat sleeps on the piano every night."]


def _long(fact: str) -> str:
    return FILLER * 14 + fact  # about 330 words: the fact lies past a 256-token window


def _chunk_rows(raw_db: Callable[[str], Any], location: str, cube_id: str) -> int:
    conn = raw_db(location)
    return int(conn.execute("SELECT count(*) FROM cube_chunk k JOIN cubes c ON c.seq = k.seq WHERE c.id = ?",
                            (cube_id,)).fetchone()[0])


def _ids(client: memcubed.Memcubed, query: str, k: int = 3, **kwargs: Any) -> list[str]:
    return [h.cube.id for h in client.search(query, mode="vector", k=k, **kwargs).hits]


@pytest.mark.parametrize("exact_up_to", [2_000, 0], ids=["exact", "approximate"])
def test_a_fact_past_the_window_is_found_by_its_window(open_mc: Callable[..., memcubed.Memcubed], backend: Backend,
                                                       exact_up_to: int) -> None:
    settings = memcubed.Settings(exact_vectors_up_to=exact_up_to, embed_windows=True)
    client = open_mc(backend.location(), settings=settings)
    long = client.add(_long(FACT))
    client.add_many([{"text": text} for text in OTHERS] + [{"text": FILLER * 3}])
    assert _ids(client, QUERY, k=1) == [long.id]


def test_short_memories_get_no_windows_and_windows_are_opt_in(
    open_mc: Callable[..., memcubed.Memcubed], backend: Backend, raw_db: Callable[[str], Any]
) -> None:
    location = backend.location()
    client = open_mc(location, settings=memcubed.Settings(embed_windows=True))
    assert _chunk_rows(raw_db, location, client.add(FACT).id) == 0
    assert _chunk_rows(raw_db, location, client.add(_long(FACT)).id) >= 1
    plain = backend.location()
    assert _chunk_rows(raw_db, plain, open_mc(plain).add(_long(FACT)).id) == 0  # off unless the setting asks


def test_an_update_replaces_every_window(open_mc: Callable[..., memcubed.Memcubed], backend: Backend,
                                         raw_db: Callable[[str], Any]) -> None:
    location = backend.location()
    client = open_mc(location, settings=memcubed.Settings(exact_vectors_up_to=0, embed_windows=True))
    long = client.add(_long(FACT))
    client.add_many([{"text": text} for text in OTHERS])
    before = _chunk_rows(raw_db, location, long.id)
    client.update(long.id, text=_long("The passport renewal form is in the top drawer of the oak desk."))
    assert _chunk_rows(raw_db, location, long.id) == before  # same length, same number of windows
    assert long.id not in _ids(client, QUERY, k=1)
    assert _ids(client, "where is the passport renewal form?", k=1) == [long.id]
    client.update(long.id, text="A short note now.")
    assert _chunk_rows(raw_db, location, long.id) == 0


@pytest.mark.parametrize("exact_up_to", [2_000, 0], ids=["exact", "approximate"])
def test_a_forgotten_memory_s_windows_never_match(open_mc: Callable[..., memcubed.Memcubed], backend: Backend,
                                                  raw_db: Callable[[str], Any], exact_up_to: int) -> None:
    location = backend.location()
    client = open_mc(location, settings=memcubed.Settings(exact_vectors_up_to=exact_up_to, embed_windows=True))
    long = client.add(_long(FACT))
    client.add_many([{"text": text} for text in OTHERS])
    assert _ids(client, QUERY, k=1) == [long.id]  # warm: the approximate index holds its windows
    client.forget(long.id)
    assert _chunk_rows(raw_db, location, long.id) == 0
    every = {"states": ["active", "deleted", "archived", "stale"]}
    assert long.id not in _ids(client, QUERY, k=20, filters=every)
    assert long.id not in [h.cube.id for h in client.search(FACT, mode="hybrid", k=20, filters=every).hits]


def test_another_principal_never_matches_a_window(open_mc: Callable[..., memcubed.Memcubed],
                                                  backend: Backend) -> None:
    client = open_mc(backend.location(), settings=memcubed.Settings(exact_vectors_up_to=0, embed_windows=True))
    client.create_principal("alice")
    client.create_principal("bob")
    alice, bob = client.as_principal("alice"), client.as_principal("bob")
    secret = alice.add(_long(FACT))
    bob.add_many([{"text": text} for text in OTHERS])
    assert secret.id not in _ids(bob, QUERY, k=20)
    assert _ids(alice, QUERY, k=1) == [secret.id]
    alice.share(secret.id, "bob")
    assert _ids(bob, QUERY, k=1) == [secret.id]
    alice.revoke(secret.id, "bob")
    assert secret.id not in _ids(bob, QUERY, k=20)
