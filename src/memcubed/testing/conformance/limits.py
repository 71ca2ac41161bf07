"""Configured limits hold in the kernel (so every interface gets them), on every backend: an oversized
``meta``, too many tags, a batch, ``k`` or page over its limit and a principal over its quota all get
``BudgetExceeded``, and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import memcubed
from memcubed import BudgetExceeded, Settings

OpenMc = Callable[..., memcubed.Memcubed]
Counts = Callable[[str], dict[str, int]]


@pytest.fixture
def small(open_mc: OpenMc, location: str) -> memcubed.Memcubed:
    settings = Settings(max_meta_bytes=1000, max_tags=3, max_tag_chars=10, max_batch=5, max_search_k=20, max_page=50,
                        quota_cubes=4, quota_bytes=0)
    mc = open_mc(location, embedder="none", settings=settings)
    mc.create_principal("alice")
    return mc


REFUSED: list[tuple[str, Callable[[memcubed.Memcubed, str], object], str]] = [
    ("meta over max_meta_bytes", lambda mc, cid: mc.add("m", meta={"blob": "x" * 2000}), "meta"),
    ("meta over the limit by its JSON", lambda mc, cid: mc.add("m", meta={"k": ["é"] * 400}), "meta"),
    ("too many tags", lambda mc, cid: mc.add("t", tags=["a", "b", "c", "d"]), "tags"),
    ("tag too long", lambda mc, cid: mc.add("t", tags=["x" * 11]), "tags"),
    ("batch over max_batch", lambda mc, cid: mc.add_many([{"text": f"b{i}"} for i in range(6)]), "items"),
    ("update meta over the limit", lambda mc, cid: mc.update(cid, meta={"blob": "x" * 2000}), "meta"),
    ("update tags over the limit", lambda mc, cid: mc.update(cid, tags=["a", "b", "c", "d"]), "tags"),
    ("k over max_search_k", lambda mc, cid: mc.search("kept", k=21, mode="lexical"), "k"),
    ("history page over max_page", lambda mc, cid: mc.history(cid, limit=51), "limit"),
    ("list page over max_page", lambda mc, cid: mc.list_cubes(limit=51), "limit"),
    ("audit page over max_page", lambda mc, cid: mc.audit(limit=51), "limit"),
    ("batch over the cube quota", lambda mc, cid: mc.add_many([{"text": f"q{i}"} for i in range(4)]),
     "quota_cubes"),
]


@pytest.mark.parametrize(("case", "call", "field"), REFUSED, ids=[c[0] for c in REFUSED])
def test_limits_refuse_and_write_nothing(small: memcubed.Memcubed, location: str, raw_counts: Counts, case: str,
                                         call: Callable[[memcubed.Memcubed, str], object], field: str) -> None:
    cube = small.add("the kept memory", tags=["kept"], meta={"small": 1})
    before = (raw_counts(location), small.kernel.store.load_cube(cube.id))
    with pytest.raises(BudgetExceeded) as info:
        call(small, cube.id)
    assert info.value.code == "budget_exceeded"
    assert info.value.details["field"] == field
    assert info.value.details["limit"] < info.value.details["size"]
    assert (raw_counts(location), small.kernel.store.load_cube(cube.id)) == before


def test_at_the_limits_is_accepted(small: memcubed.Memcubed) -> None:
    meta: dict[str, Any] = {"blob": "x" * 980}
    cube = small.add("at the limit", meta=meta, tags=["a", "b", "x" * 10])
    assert small.get(cube.id).meta == meta
    assert len(small.add_many([{"text": f"b{i}"} for i in range(3)])) == 3
    assert small.search("limit", k=20, mode="lexical").hits
    assert small.history(cube.id, limit=50)


def test_cube_quota_is_per_principal_and_counts_live_cubes(small: memcubed.Memcubed, location: str,
                                                           raw_counts: Counts) -> None:
    cubes = small.add_many([{"text": f"own {i}"} for i in range(4)])
    with pytest.raises(BudgetExceeded) as info:
        small.add("one too many")
    assert info.value.details == {"field": "quota_cubes", "principal": "admin", "size": 5, "limit": 4}
    alice = small.as_principal("alice")
    assert alice.add("alice has her own quota").owner == "alice"
    small.delete(cubes[0].id)
    assert small.add("room again after a delete").version == 1
    before = raw_counts(location)
    with pytest.raises(BudgetExceeded):
        small.add("still full")
    assert raw_counts(location) == before


def test_byte_quota_counts_text_and_meta_of_the_owner(open_mc: OpenMc, location: str, raw_counts: Counts) -> None:
    mc = open_mc(location, embedder="none", settings=Settings(quota_bytes=20_000, max_text_chars=30_000,
                                                               max_meta_bytes=30_000))
    cube = mc.add("a" * 8_000)
    mc.add("b" * 8_000)
    before = (raw_counts(location), mc.kernel.store.load_cube(cube.id))
    with pytest.raises(BudgetExceeded) as info:
        mc.add("c" * 8_000)
    assert info.value.details["field"] == "quota_bytes"
    with pytest.raises(BudgetExceeded):
        mc.update(cube.id, meta={"pad": "p" * 8_000})
    assert (raw_counts(location), mc.kernel.store.load_cube(cube.id)) == before
    assert mc.update(cube.id, text="shorter now").version == 2


def test_zero_quotas_are_unlimited(open_mc: OpenMc, location: str) -> None:
    mc = open_mc(location, embedder="none", settings=Settings(quota_cubes=0, quota_bytes=0, max_batch=100))
    assert len(mc.add_many([{"text": f"n{i}"} for i in range(50)])) == 50
