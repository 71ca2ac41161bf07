"""Portable bundles across backends, with every form of memory: a SQLite store's text, versions, KV-cache
(the real SmolLM2) and LoRA adapter go into the store under test and out again into a fresh SQLite store,
and generation with the imported activation and adapter gives the same tokens as with the originals."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import memcubed
from memcubed import CorruptBundle, CubeKind, ModelUnavailable, Settings
from memcubed.backends.models import LocalTransformersLM, make_language_model
from memcubed.schemas.bundle import BundleImportReport

OpenMc = Callable[..., memcubed.Memcubed]

FACTS = ["Quokka the cat sleeps on the red sofa every afternoon.", "The spare key is hidden under the blue pot."]
QUERY = "\n\nQuestion: Where is the spare key hidden? Answer:"
RECALL = "Where is the spare key hidden?"
QUICK = {"rank": 8, "alpha": 16, "statement_splits": [0.3], "epochs": 2, "learning_rate": 3e-3, "batch_size": 4,
         "rehearsal": 0, "rehearsal_tokens": 8, "answer_slack_tokens": 4,
         "recall_min": 0.0, "drift_max": 100.0}
"""A quick adapter for the bundle's mechanics: it need not recall, so the consolidation gate is opened."""


def _origin(open_mc: OpenMc, path: Path, lm: LocalTransformersLM) -> tuple[memcubed.Memcubed, dict[str, str]]:
    """A SQLite store where alice has two facts (one edited), their KV-cache and an adapter trained on them."""
    mc = open_mc(path, embedder="none")
    mc.create_principal("alice")
    alice = mc.as_principal("alice")
    first = alice.add("Quokka the cat sleeps on the sofa.", namespace="home", tags=["pets"])
    alice.update(first.id, text=FACTS[0])
    second = alice.add(FACTS[1], namespace="home", meta={"qa": [{"question": RECALL, "answer": "under the blue pot"}]})
    act = alice.cache([first.id, second.id], lm=lm)
    adapter = alice.consolidate([first.id, second.id], lm=lm, config=QUICK, control=[])
    return alice, {"first": first.id, "second": second.id, "act": act.id, "adapter": adapter.id}


def _answers(client: memcubed.Memcubed, ids: dict[str, str], lm: LocalTransformersLM) -> tuple[str, str]:
    kv = client.generate(QUERY, activation_id=ids["act"], lm=lm, max_new_tokens=8)
    assert kv.injected == [ids["act"]] and kv.prefix_tokens > 10
    recalled = client.generate_with_adapters(RECALL, [ids["adapter"]], lm=lm, max_new_tokens=10)
    return kv.text, recalled.text


def _moved(ids: dict[str, str], report: BundleImportReport) -> dict[str, str]:
    return {name: report.ids[old] for name, old in ids.items()}


def test_bundle_round_trip_through_the_backend_keeps_every_form(
        open_mc: OpenMc, location: str, tmp_path: Path, lm: LocalTransformersLM) -> None:
    alice, ids = _origin(open_mc, tmp_path / "origin.db", lm)
    expected = _answers(alice, ids, lm)
    first = tmp_path / "first.mcb"
    report = alice.export_bundle(first, namespace="home")
    assert report.cubes == 4 and report.versions == 5 and report.blobs >= 3 and not report.left_out
    with zipfile.ZipFile(first) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    kinds = {c["id"]: c for c in manifest["cubes"]}
    assert kinds[ids["act"]]["kv_format"] == 1 and kinds[ids["act"]]["model"] == lm.fingerprint
    assert kinds[ids["adapter"]]["adapter_format"] == 1 and kinds[ids["adapter"]]["tokenizer"] == lm.fingerprint
    assert kinds[ids["first"]]["kind"] == "plaintext" and kinds[ids["first"]]["model"] is None

    middle = open_mc(location, embedder="none")
    middle.create_principal("carol")
    carol = middle.as_principal("carol")
    moved = carol.import_bundle(first, namespace="moved")
    assert moved.unusable == {} and moved.cubes == 4
    here = _moved(ids, moved)
    assert _answers(carol, here, lm) == expected
    act = carol.get(here["act"])
    assert act.kind is CubeKind.ACTIVATION and act.owner == "carol" and act.acl == []
    assert [(r.id, r.version) for r in act.derived_from] == sorted((here[n], v) for n, v in (("first", 2),
                                                                                             ("second", 1)))
    assert [h.cube.text for h in carol.history(here["first"])] == [h.cube.text for h in alice.history(ids["first"])]
    assert middle.verify_audit().ok

    back = tmp_path / "back.mcb"
    carol.export_bundle(back, namespace="moved")
    final = open_mc(tmp_path / "final.db", embedder="none")
    returned = final.import_bundle(back, namespace="home-again")
    assert _answers(final, _moved(here, returned), lm) == expected
    assert final.verify_audit().ok


def test_a_tampered_tensor_blob_is_refused_and_leaves_nothing(
        open_mc: OpenMc, location: str, tmp_path: Path, lm: LocalTransformersLM) -> None:
    alice, ids = _origin(open_mc, tmp_path / "origin.db", lm)
    buffer = io.BytesIO()
    alice.export_bundle(buffer, cube_ids=[ids["first"], ids["second"], ids["act"]])
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename.startswith("blobs/"):
                body = body[:-1] + bytes([body[-1] ^ 0x01])  # one bit of one KV value
            dst.writestr(info, body)
    target = open_mc(location, embedder="none")
    with pytest.raises(CorruptBundle):
        target.import_bundle(out.getvalue(), namespace="x")
    assert list(target.kernel.store.iter_cube_ids()) == [] and list(target.kernel.blobs.iter_digests()) == []


def _other_model(folder: Path, lm: LocalTransformersLM) -> LocalTransformersLM:
    """A real open model that is not SmolLM2: one tiny random Llama layer over the same tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(lm.tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         bos_token_id=lm.config.bos_token_id, eos_token_id=lm.config.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    other = make_language_model(f"local:{folder}")
    assert isinstance(other, LocalTransformersLM) and other.fingerprint != lm.fingerprint
    return other


def test_tensor_cubes_of_a_missing_model_import_unusable_until_it_is_there(
        open_mc: OpenMc, location: str, tmp_path: Path, lm: LocalTransformersLM) -> None:
    alice, ids = _origin(open_mc, tmp_path / "origin.db", lm)
    expected = _answers(alice, ids, lm)
    data = io.BytesIO()
    alice.export_bundle(data, namespace="home")
    other = _other_model(tmp_path / "tiny", lm)
    elsewhere = open_mc(location, embedder="none",
                        settings=Settings(models={"tiny": f"local:{tmp_path / 'tiny'}"}, default_model="tiny"))
    report = elsewhere.import_bundle(data.getvalue(), namespace="n")
    here = _moved(ids, report)
    assert set(report.unusable) == {here["act"], here["adapter"]}
    assert all(lm.fingerprint in why for why in report.unusable.values())
    act = elsewhere.get(here["act"])
    assert act.meta["imported"] == {"from": ids["act"], "bundle": report.sha256, "model_present": False}
    with pytest.raises(ModelUnavailable):
        elsewhere.generate(QUERY, activation_id=here["act"], lm=other, max_new_tokens=2)
    with pytest.raises(ModelUnavailable):
        elsewhere.generate_with_adapters(RECALL, [here["adapter"]], lm=other, max_new_tokens=2)
    elsewhere.close()
    present = open_mc(location, embedder="none")  # the operator configures the model: now they work
    assert _answers(present, here, lm) == expected
