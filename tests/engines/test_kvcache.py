"""Activation memory on the real packaged model: injected KV equals reading the text, stored as a prefix tree.

Measured numbers (logit deviations, bytes) are printed (see them with ``pytest -rP``) and shown
in assertion messages; nothing here asserts on timings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from memcubed.backends.blobs import FileBlobStore
from memcubed.backends.models import LocalTransformersLM
from memcubed.engines.kvcache import (
    CubeText,
    KVCacheConfig,
    KVCacheEngine,
    KVPrefix,
    MemorySegmentIndex,
    render_prefix,
    with_prefix,
)
from memcubed.engines.kvcache.serialize import SCHEMA_VERSION, dump_segment, read_metadata
from memcubed.errors import ConfigurationError, IntegrityError, ValidationError

ALICE = CubeText("01-alice", 1, "Alice lives in Paris. She bakes bread every morning and sells it at the market.",
                 owner="alice", source="conversation:chat:1")
BOB = CubeText("02-bob", 3, "Bob lives in Rome. He flies planes for a small airline and loves opera.", owner="bob",
               source="api")
CAROL = CubeText("03-carol", 1, "Carol lives in Oslo. She is a nurse and skis across the hills on weekends.")
QUERY = "Question: What does Bob do for a living?\nAnswer: Bob"
TOLERANCE = 1e-4


@pytest.fixture
def engine(lm: LocalTransformersLM) -> KVCacheEngine:
    return KVCacheEngine(lm)


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def _report(name: str, value: float) -> None:
    print(f"{name} = {value:.6g}")


def _blob_files(blobs: FileBlobStore) -> list[Path]:
    return [p for p in blobs.root.rglob("*") if p.is_file()]


def _joint_logits(lm: LocalTransformersLM, engine: KVCacheEngine, cubes: list[CubeText], query: str) -> torch.Tensor:
    """The reference: one forward pass over every cube's text (as rendered for the model) and the query."""
    ids = [token for cube in cubes for token in lm.encode(cube.rendered + engine.config.separator)]
    logits, _ = lm.forward(ids + lm.encode(query))
    return logits


def test_single_cube_injected_from_a_blob_equals_the_text_in_the_prompt(
        lm: LocalTransformersLM, engine: KVCacheEngine, blobs: FileBlobStore) -> None:
    [segment] = engine.compile([BOB])
    digest = blobs.put(engine.dumps(segment))
    prefix = engine.load([digest], blobs)
    assert prefix.token_ids == lm.encode(BOB.rendered + "\n\n")

    diff = (engine.next_token_logits(QUERY, prefix) - _joint_logits(lm, engine, [BOB], QUERY)).abs().max().item()
    _report("single_cube_max_logit_diff", diff)
    assert diff <= TOLERANCE, f"injected vs in-prompt logits differ by {diff}"

    injected = engine.generate(QUERY, prefix, max_new_tokens=8)
    again = engine.generate(QUERY, prefix, max_new_tokens=8)  # the stored prefix was not mutated
    reread = lm.greedy(engine.query_ids(prefix, QUERY), max_new_tokens=8)
    assert injected.token_ids == again.token_ids == reread.token_ids
    assert injected.token_ids, "the model should say something about Bob"
    assert prefix.token_count == segment.meta.token_count and prefix.layers[0][0].shape[2] == prefix.token_count


def test_multi_cube_exact_path_equals_one_joint_pass_and_approximate_does_not(
        lm: LocalTransformersLM, engine: KVCacheEngine, blobs: FileBlobStore) -> None:
    index = MemorySegmentIndex()
    reference = _joint_logits(lm, engine, [ALICE, BOB, CAROL], QUERY)  # canonical order: by id

    exact, report = engine.build([CAROL, ALICE, BOB], blobs=blobs, index=index)
    assert [s.cube_id for s in exact.segments] == ["01-alice", "02-bob", "03-carol"]
    # The injected text is the simulated prefix's body, block for block: one renderer for both paths.
    blocks = [c.rendered + engine.config.separator for c in (ALICE, BOB, CAROL)]
    assert "".join(blocks) in render_prefix([ALICE, BOB, CAROL])
    assert [t for block in blocks for t in lm.encode(block)] == exact.token_ids
    assert report.computed == 3 and report.reused == 0
    exact_diff = (engine.next_token_logits(QUERY, exact) - reference).abs().max().item()

    approx, _ = engine.build([CAROL, ALICE, BOB], blobs=blobs, index=index, mode="approximate")
    assert not approx.exact and approx.token_ids == exact.token_ids
    approx_diff = (engine.next_token_logits(QUERY, approx) - reference).abs().max().item()

    _report("exact_max_logit_diff", exact_diff)
    _report("approximate_max_logit_diff", approx_diff)
    assert exact_diff <= TOLERANCE, f"exact path deviates by {exact_diff}"
    assert approx_diff > 1e-3, f"approximate path deviates by only {approx_diff}"

    # Reloaded from blobs, the exact prefix still matches the joint pass.
    reloaded = engine.load(report.digests, blobs)
    assert (engine.next_token_logits(QUERY, reloaded) - reference).abs().max().item() <= TOLERANCE


def test_sets_sharing_a_prefix_share_stored_segments(engine: KVCacheEngine, blobs: FileBlobStore) -> None:
    index = MemorySegmentIndex()
    _, first = engine.build([BOB, ALICE], blobs=blobs, index=index)
    assert (first.reused, first.computed) == (0, 2)
    assert len(_blob_files(blobs)) == 2 and len(index) == 2

    prefix, second = engine.build([CAROL, BOB, ALICE], blobs=blobs, index=index)
    assert (second.reused, second.computed) == (2, 1)
    assert second.keys[:2] == first.keys and second.digests[:2] == first.digests
    assert len(_blob_files(blobs)) == 3 and len(index) == 3

    # {A, C} shares only A: C after A is another branch of the tree than C after A, B.
    _, branch = engine.build([ALICE, CAROL], blobs=blobs, index=index)
    assert (branch.reused, branch.computed) == (1, 1) and branch.keys[1] != second.keys[2]
    assert len(_blob_files(blobs)) == 4

    # A new version of a cube is a new path from that cube on.
    edited = dataclasses.replace(BOB, version=4, text=BOB.text.replace("Rome", "Milan"))
    _, changed = engine.build([ALICE, edited], blobs=blobs, index=index)
    assert (changed.reused, changed.computed) == (1, 1)
    assert prefix.segments[1].key != changed.keys[1]


def test_a_segment_from_another_model_is_refused(
        engine: KVCacheEngine, tiny_lm: LocalTransformersLM, blobs: FileBlobStore) -> None:
    [segment] = engine.compile([ALICE.text])
    data = engine.dumps(segment)
    with pytest.raises(ConfigurationError, match="another model") as caught:
        KVCacheEngine(tiny_lm).loads(data)
    assert caught.value.details["actual"] == engine.lm.fingerprint
    assert caught.value.details["expected"] == tiny_lm.fingerprint

    # The same through the prefix tree: another model's engine computes its own segments, never reusing these.
    index = MemorySegmentIndex()
    engine.build([ALICE], blobs=blobs, index=index)
    _, report = KVCacheEngine(tiny_lm).build([ALICE], blobs=blobs, index=index)
    assert report.computed == 1 and len(index) == 2


def test_a_tampered_blob_is_refused_quarantined_and_recomputed(engine: KVCacheEngine, blobs: FileBlobStore) -> None:
    index = MemorySegmentIndex()
    first, report = engine.build([ALICE, BOB], blobs=blobs, index=index)
    victim = blobs.root / report.digests[1][:2] / report.digests[1][2:]
    intact = victim.read_bytes()
    raw = bytearray(intact)
    raw[-10] ^= 0xFF  # flip bits inside a value tensor: still parseable safetensors, wrong numbers
    victim.write_bytes(bytes(raw))

    with pytest.raises(IntegrityError, match="corrupt"):
        engine.load(report.digests, blobs)
    assert not victim.exists() and [p.read_bytes() for p in (blobs.root / "quarantine").iterdir()] == [bytes(raw)]
    # The next build recomputes the segment (the stored one is never injected) and stores it again.
    _, again = engine.build([ALICE, BOB], blobs=blobs, index=index)
    assert (again.reused, again.computed) == (1, 1) and again.digests == report.digests
    assert victim.read_bytes() == intact and engine.load(report.digests, blobs).token_ids == first.token_ids

    # Tampered again and never read since: build itself finds it, moves it aside and recomputes it.
    victim.write_bytes(bytes(raw))
    _, healed = engine.build([ALICE, BOB], blobs=blobs, index=index)
    assert healed.quarantined == [report.digests[1]] and healed.computed == 1 and victim.read_bytes() == intact
    _, approx = engine.build([ALICE, BOB], blobs=blobs, index=index, mode="approximate")
    victim_approx = blobs.root / approx.digests[1][:2] / approx.digests[1][2:]
    victim_approx.write_bytes(b"garbage")
    _, approx_again = engine.build([ALICE, BOB], blobs=blobs, index=index, mode="approximate")
    assert approx_again.quarantined == [approx.digests[1]] and approx_again.computed == 1


def test_mislinked_or_malformed_segments_are_integrity_errors(engine: KVCacheEngine, blobs: FileBlobStore) -> None:
    index = MemorySegmentIndex()
    _, report = engine.build([ALICE, BOB], blobs=blobs, index=index)
    with pytest.raises(IntegrityError, match="does not continue"):
        engine.load(list(reversed(report.digests)), blobs)
    # An index entry pointing at the wrong segment is caught by the key stored inside the segment.
    index.put(report.keys[0], report.digests[1])
    with pytest.raises(IntegrityError, match="holds segment"):
        engine.build([ALICE, BOB], blobs=blobs, index=index)
    with pytest.raises(IntegrityError, match="malformed"):
        engine.loads(b"not a safetensors file at all")
    [segment] = engine.compile([ALICE.text])
    future = dataclasses.replace(segment.meta, token_count=segment.meta.token_count + 1)
    with pytest.raises(IntegrityError, match="disagree"):
        engine.loads(dump_segment(dataclasses.replace(segment, meta=future)))


def test_safetensors_roundtrip_is_exact_and_carries_its_metadata(lm: LocalTransformersLM,
                                                                 engine: KVCacheEngine) -> None:
    [segment] = engine.compile([ALICE.text])
    data = engine.dumps(segment)
    assert data == engine.dumps(segment)  # deterministic bytes: equal segments share one blob
    meta = read_metadata(data)
    assert meta["fingerprint"] == lm.fingerprint and meta["dtype"] == "float32"
    assert meta["token_count"] == str(len(segment.token_ids)) and meta["schema_version"] == str(SCHEMA_VERSION)
    assert meta["memcubed_version"] and meta["layers"] == str(lm.config.num_hidden_layers)

    loaded = engine.loads(data)
    assert loaded.meta == segment.meta and loaded.token_ids == segment.token_ids
    assert all(torch.equal(a, b) and torch.equal(c, d)
               for (a, c), (b, d) in zip(segment.layers, loaded.layers, strict=True))


def test_bfloat16_storage_halves_the_bytes(lm: LocalTransformersLM, engine: KVCacheEngine) -> None:
    half = KVCacheEngine(lm, KVCacheConfig(storage_dtype="bfloat16"))
    [full_segment] = engine.compile([BOB])
    [half_segment] = half.compile([BOB])
    full_bytes, half_bytes = len(engine.dumps(full_segment)), len(half.dumps(half_segment))
    tokens = full_segment.meta.token_count
    ratio = half_bytes / full_bytes
    _report("fp32_bytes_per_token", full_bytes / tokens)
    _report("bf16_bytes_per_token", half_bytes / tokens)
    assert 0.49 < ratio < 0.52, f"bf16 is {ratio:.3f} of fp32"

    prefix = half.loads(half.dumps(half_segment))
    assert prefix.meta.dtype == "bfloat16" and prefix.layers[0][0].dtype == torch.float32
    injected = half.next_token_logits(QUERY, half.assemble([prefix]))
    deviation = (injected - _joint_logits(lm, engine, [BOB], QUERY)).abs().max().item()
    _report("bf16_max_logit_diff", deviation)
    assert 0 < deviation < 1.0, f"bf16 storage moved logits by {deviation}"
    # Different storage formats are different tree keys: no mixing of fp32 and bf16 segments.
    assert half_segment.meta.key != full_segment.meta.key


def test_approximate_prefixes_cannot_be_extended_and_limits_are_checked(lm: LocalTransformersLM) -> None:
    engine = KVCacheEngine(lm, KVCacheConfig(max_segment_tokens=4))
    with pytest.raises(ValidationError, match="max_segment_tokens"):
        engine.compile([ALICE.text])
    with pytest.raises(ValidationError, match="approximate"):
        engine.compile(["x"], after=KVPrefix(token_ids=[], layers=[], exact=False))
    with pytest.raises(ValidationError, match="two different texts"):
        engine.build([ALICE, dataclasses.replace(ALICE, text="other")], blobs=FileBlobStore("/nonexistent"),
                     index=MemorySegmentIndex())


# -- simulated KV ----------------------------------------------------------------------------------------------

_PREFIX_SCRIPT = """
import hashlib, json, sys
from memcubed.engines.kvcache.prefix import CubeText
from memcubed.engines.kvcache.simulate import render_prefix
cubes = [CubeText(*item) for item in json.loads(sys.argv[1])]
print(hashlib.sha256(render_prefix(cubes).encode()).hexdigest())
"""


def _pythonpath() -> dict[str, str]:
    """The caller's PYTHONPATH (a worktree's src), so the child renders with the code under test."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}


def test_simulated_prefix_bytes_ignore_input_order_and_process() -> None:
    cubes = [ALICE, BOB, CAROL, CubeText("00-zed", 2, "Zed's note: ünïcode ✓ and <tags> stay escaped.")]
    renders = {render_prefix(list(order)).encode() for order in itertools.permutations(cubes)}
    assert len(renders) == 1
    [rendered] = renders
    assert rendered.index(b'id="00-zed"') < rendered.index(b'id="01-alice"') < rendered.index(b'id="03-carol"')

    import json

    for seed in ("1", "2"):  # different hash seeds: no set or dict iteration order may leak in
        out = subprocess.run([sys.executable, "-c", _PREFIX_SCRIPT,
                              json.dumps([[c.id, c.version, c.text, c.owner, c.source] for c in reversed(cubes)])],
                             capture_output=True, text=True, check=True,
                             env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin", **_pythonpath()})
        assert out.stdout.strip() == hashlib.sha256(rendered).hexdigest()

    # What the model reads names content: a new version with the same text reads the same, a new text does not.
    assert render_prefix([dataclasses.replace(BOB, version=4), ALICE]) == render_prefix([BOB, ALICE])
    assert render_prefix([dataclasses.replace(BOB, text="Bob moved."), ALICE]) != render_prefix([BOB, ALICE])
    assert render_prefix([ALICE, ALICE]) == render_prefix([ALICE])


def test_with_prefix_puts_the_memories_first() -> None:
    messages = with_prefix([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                           [BOB, ALICE])
    assert messages[0]["role"] == "system" and messages[0]["content"].startswith(render_prefix([ALICE, BOB]))
    assert messages[0]["content"].endswith("Be brief.") and messages[1] == {"role": "user", "content": "Hi"}
    assert with_prefix([{"role": "user", "content": "Hi"}], [ALICE])[0]["content"] == render_prefix([ALICE])
