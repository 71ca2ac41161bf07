"""Portable bundles on SQLite, without a model: what goes in, what never does, and every hostile file refused
with a typed error before the store changes (tensor cubes and PostgreSQL: the conformance suite's bundle module)."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest

import memcubed
from memcubed import AccessDenied, BudgetExceeded, CorruptBundle, NotFound, Settings, ValidationError
from memcubed.testing.conformance.fixtures import OpenMc


def _state(mc: memcubed.Memcubed) -> tuple[Any, ...]:
    """Everything an import may change, read through the backend (no reads counted)."""
    store = mc.kernel.store
    ids = list(store.iter_cube_ids())
    return (ids, [store.list_versions(i, limit=1000, offset=0) for i in ids], list(store.iter_audit()),
            sorted(mc.kernel.blobs.iter_digests()))


@pytest.fixture
def origin(open_mc: OpenMc, tmp_path: Path) -> memcubed.Memcubed:
    """A store where alice has a versioned memory, a fact derived from it (shared with bob), and a private one;
    bob has one of his own."""
    mc = open_mc(tmp_path / "origin.db", embedder="none")
    for name in ("alice", "bob"):
        mc.create_principal(name)
    alice = mc.as_principal("alice")
    turn = alice.add("we met at the harbour", namespace="trip", tags=["travel"], importance=0.9,
                     source={"type": "conversation", "uri": "chat-1", "ref": "t1"})
    alice.update(turn.id, text="we met at the old harbour")
    fact = alice.add("meeting place: the old harbour", namespace="trip",
                     derived_from=[{"id": turn.id, "version": 2}])
    alice.share(fact.id, "bob", "read")
    alice.add("my locker code is 7731", namespace="trip", tags=["secret"])
    mc.as_principal("bob").add("bob's own note", namespace="trip")
    return mc


@pytest.fixture
def target(open_mc: OpenMc, tmp_path: Path) -> memcubed.Memcubed:
    mc = open_mc(tmp_path / "target.db", embedder="none")
    for name in ("carol", "dave"):
        mc.create_principal(name)
    return mc


def _export(mc: memcubed.Memcubed, who: str = "alice", **selection: Any) -> tuple[bytes, Any]:
    buffer = io.BytesIO()
    report = mc.as_principal(who).export_bundle(buffer, **selection)
    return buffer.getvalue(), report


def _rebuilt(data: bytes, change: Any) -> bytes:
    """The bundle with ``change(name, bytes) -> bytes | None`` applied to each entry (None drops it): a
    well-formed zip again (fresh CRCs), so only memcubed's own checks can catch the change."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            changed = change(info.filename, src.read(info))
            if changed is not None:
                dst.writestr(info, changed)
    return out.getvalue()


def _with_manifest(data: bytes, edit: Any) -> bytes:
    def change(name: str, body: bytes) -> bytes:
        if name != "manifest.json":
            return body
        manifest = json.loads(body)
        edit(manifest)
        return json.dumps(manifest).encode()
    return _rebuilt(data, change)


def test_round_trip_keeps_text_versions_lineage_and_metadata_under_new_ids(
        origin: memcubed.Memcubed, target: memcubed.Memcubed) -> None:
    steps: list[tuple[int, int]] = []
    buffer = io.BytesIO()
    report = origin.as_principal("alice").export_bundle(buffer, namespace="trip",
                                                        progress=lambda d, t: steps.append((d, t)))
    assert report.cubes == 3 and report.versions == 4 and not report.left_out and steps[-1] == (3, 3)
    data = buffer.getvalue()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        everything = b"".join(archive.read(n) for n in archive.namelist())
    assert manifest["format"] == "memcubed.bundle" and manifest["format_version"] == 1
    assert manifest["memcubed_version"] and set(manifest["entries"]) == {f"cubes/00000{i}.json" for i in (1, 2, 3)}
    assert b"bob" not in everything  # no grant of the exporting store travels, nor bob's own cube
    assert origin.audit()[-1].op == "export" and origin.audit()[-1].details["sha256"] == report.sha256

    carol = target.as_principal("carol")
    imported = carol.import_bundle(data, namespace="from-alice")
    assert imported.cubes == 3 and imported.versions == 4 and imported.owner == "carol"
    assert set(imported.ids) == set(report.exported) and not set(imported.ids.values()) & set(imported.ids)
    olds = {c.id: c for c in origin.list_cubes(namespace="trip")}
    for old_id, new_id in imported.ids.items():
        old, new = olds[old_id], carol.get(new_id)
        assert (new.owner, new.namespace, new.acl) == ("carol", "from-alice", [])
        assert (new.text, new.version, new.tags, new.importance, new.source, new.created_at) == \
            (old.text, old.version, old.tags, old.importance, old.source, old.created_at)
        assert [h.cube.text for h in carol.history(new_id)] == [h.cube.text for h in origin.history(old_id)]
        assert new.derived_from == [ref.model_copy(update={"id": imported.ids[ref.id]}) for ref in old.derived_from]
    assert carol.search("harbour", namespace="from-alice", mode="lexical").hits
    assert {r.op for r in target.audit()[-3:]} == {"import"} and target.verify_audit().ok
    with pytest.raises(NotFound):
        target.as_principal("dave").get(next(iter(imported.ids.values())))  # carol's alone, no grant came along

    again = carol.import_bundle(data, namespace="from-alice")  # re-import: new ids, nothing clobbered
    assert not set(again.ids.values()) & set(imported.ids.values())
    assert len(carol.list_cubes(namespace="from-alice")) == 6
    assert all(carol.get(i).version == olds[o].version for o, i in imported.ids.items())


def test_export_holds_only_what_the_caller_may_read(origin: memcubed.Memcubed) -> None:
    alice_cubes = {c.text: c.id for c in origin.as_principal("alice").list_cubes(namespace="trip")}
    bob = origin.as_principal("bob")
    with pytest.raises(NotFound):
        bob.export_bundle(io.BytesIO(), cube_ids=[alice_cubes["my locker code is 7731"]])
    assert origin.audit()[-1].op == "add"  # a refused export writes no bundle and no export record
    data, report = _export(origin, "bob", namespace="trip")
    # bob reads the shared fact but not the turn it came from: the fact stays out, and the report says why.
    assert [x.id for x in report.left_out] == [alice_cubes["meeting place: the old harbour"]]
    assert "source" in report.left_out[0].reason
    assert report.cubes == 1 and b"7731" not in data and b"harbour" not in data


def test_a_derived_cube_goes_only_with_all_its_sources(origin: memcubed.Memcubed) -> None:
    cubes = {c.text: c.id for c in origin.as_principal("alice").list_cubes(namespace="trip")}
    fact, turn = cubes["meeting place: the old harbour"], cubes["we met at the old harbour"]
    _, alone = _export(origin, cube_ids=[fact])
    assert alone.cubes == 0 and [x.id for x in alone.left_out] == [fact]
    _, both = _export(origin, cube_ids=[fact, turn])
    assert both.exported == [turn, fact] and not both.left_out  # sources first


def test_a_bundle_that_drops_a_source_is_refused(origin: memcubed.Memcubed, target: memcubed.Memcubed) -> None:
    data, _ = _export(origin, namespace="trip")
    source = "cubes/000001.json"  # the turn; the fact (derived from it) stays

    def drop(manifest: dict[str, Any]) -> None:
        del manifest["entries"][source]
        manifest["cubes"] = [c for c in manifest["cubes"] if c["entry"] != source]

    forged = _with_manifest(_rebuilt(data, lambda n, b: None if n == source else b), drop)
    before = _state(target)
    with pytest.raises(CorruptBundle, match="derived"):
        target.as_principal("carol").import_bundle(forged, namespace="x")
    assert _state(target) == before


@pytest.mark.parametrize("entry", ["cubes/000001.json", "cubes/000002.json", "cubes/000003.json"])
def test_a_tampered_byte_in_any_entry_is_refused(origin: memcubed.Memcubed, target: memcubed.Memcubed,
                                                 entry: str) -> None:
    data, _ = _export(origin, namespace="trip")
    forged = _rebuilt(data, lambda n, b: b.replace(b"harbour", b"harbous", 1).replace(b"7731", b"7732")
                      .replace(b"travel", b"travex") if n == entry else b)
    before = _state(target)
    with pytest.raises(CorruptBundle, match="hash"):
        target.as_principal("carol").import_bundle(forged, namespace="x")
    # A byte flipped in the file itself (the zip's CRC catches it, or the manifest's hash).
    start = data.index(b"cubes/000002.json") + 60
    flipped = data[:start] + bytes([data[start] ^ 0x01]) + data[start + 1:]
    with pytest.raises((CorruptBundle, ValidationError)):
        target.as_principal("carol").import_bundle(flipped, namespace="x")
    assert _state(target) == before


def test_a_manifest_that_lies_about_a_size_is_refused(origin: memcubed.Memcubed, target: memcubed.Memcubed) -> None:
    data, _ = _export(origin, namespace="trip")
    lie = _with_manifest(data, lambda m: m["entries"]["cubes/000001.json"].update(size=5))
    with pytest.raises(CorruptBundle, match="manifest says 5"):
        target.as_principal("carol").import_bundle(lie, namespace="x")
    unlisted = _with_manifest(data, lambda m: m["entries"].pop("cubes/000002.json"))
    with pytest.raises(CorruptBundle, match="unlisted"):
        target.as_principal("carol").import_bundle(unlisted, namespace="x")
    newer = _with_manifest(data, lambda m: m.update(format_version=99))
    with pytest.raises(ValidationError, match="format_version"):
        target.as_principal("carol").import_bundle(newer, namespace="x")


def _zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]], *, deflate: bool = False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as archive:
        for info, body in entries:
            archive.writestr(info, body)
    return out.getvalue()


def _symlink() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("cubes/000001.json")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("name", ["../evil.json", "/etc/passwd", "cubes/../../x.json", "blobs\\..\\x", "C:/x",
                                  "cubes/000001.json/", "notes.txt"])
def test_unsafe_entry_names_are_refused(target: memcubed.Memcubed, tmp_path: Path, name: str) -> None:
    bad = _zip([("manifest.json", b"{}"), (name, b"x")])
    with pytest.raises(ValidationError, match="entry"):
        target.as_principal("carol").import_bundle(bad, namespace="x")
    assert not any(tmp_path.rglob("evil.json")) and not any(tmp_path.rglob("x.json"))


def test_symlinks_and_duplicate_names_are_refused(target: memcubed.Memcubed) -> None:
    carol = target.as_principal("carol")
    with pytest.raises(ValidationError, match="link"):
        carol.import_bundle(_zip([("manifest.json", b"{}"), (_symlink(), b"/etc/passwd")]), namespace="x")
    with pytest.warns(UserWarning, match="Duplicate name"):
        twice = _zip([("manifest.json", b"{}"), ("cubes/000001.json", b"a"), ("cubes/000001.json", b"b")])
    with pytest.raises(ValidationError, match="repeats"):
        carol.import_bundle(twice, namespace="x")


def test_oversized_and_bomb_bundles_are_refused_before_inflating(
        origin: memcubed.Memcubed, open_mc: OpenMc, tmp_path: Path) -> None:
    data, _ = _export(origin, namespace="trip")
    tight = open_mc(tmp_path / "tight.db", embedder="none",
                    settings=Settings(bundle_max_bytes=len(data) - 1, bundle_max_entries=3))
    with pytest.raises(BudgetExceeded, match="bundle_max_bytes"):
        tight.import_bundle(data, namespace="x")
    many = _zip([("manifest.json", b"{}"), *((f"cubes/{i:06d}.json", b"{}") for i in range(4))])
    with pytest.raises(BudgetExceeded, match="bundle_max_entries"):
        tight.import_bundle(many, namespace="x")
    bomb = _zip([("manifest.json", b"{}"), ("blobs/" + "0" * 64, bytes(64 * 2**20))], deflate=True)
    assert len(bomb) < 200_000
    with pytest.raises(BudgetExceeded, match="bundle_max_ratio"):
        origin.import_bundle(bomb, namespace="x")
    small = open_mc(tmp_path / "small.db", embedder="none", settings=Settings(bundle_max_entry_bytes=100))
    with pytest.raises(BudgetExceeded, match="bundle_max_entry_bytes"):
        small.import_bundle(data, namespace="x")


def test_truncated_files_and_non_bundles_are_refused(origin: memcubed.Memcubed, target: memcubed.Memcubed,
                                                     tmp_path: Path) -> None:
    data, _ = _export(origin, namespace="trip")
    carol = target.as_principal("carol")
    before = _state(target)
    for cut in (len(data) // 2, len(data) - 10, 30):
        with pytest.raises((ValidationError, CorruptBundle)):
            carol.import_bundle(data[:cut], namespace="x")
    for junk in (b"", b"not a zip at all", b"PK\x03\x04" + bytes(100), json.dumps({"text": "x"}).encode()):
        with pytest.raises(ValidationError, match="not a memcubed bundle"):
            carol.import_bundle(junk, namespace="x")
    no_manifest = _zip([("cubes/000001.json", b"{}")])
    with pytest.raises(ValidationError, match="manifest"):
        carol.import_bundle(no_manifest, namespace="x")
    with pytest.raises(NotFound):
        carol.import_bundle(tmp_path / "missing.mcb", namespace="x")
    with pytest.raises(ValidationError):
        carol.import_bundle(data, namespace="../etc")
    assert _state(target) == before


def test_importing_for_another_principal_needs_an_administrator(
        origin: memcubed.Memcubed, target: memcubed.Memcubed) -> None:
    data, _ = _export(origin, namespace="trip")
    before = _state(target)
    with pytest.raises(AccessDenied):
        target.as_principal("carol").import_bundle(data, namespace="dave-space", owner="dave")
    assert _state(target)[:2] == before[:2] and target.audit()[-1].op == "denied"
    with pytest.raises(memcubed.UnknownPrincipal):
        target.import_bundle(data, namespace="x", owner="nobody")
    done = target.import_bundle(data, namespace="dave-space", owner="dave")  # the administrator may
    dave = target.as_principal("dave")
    assert done.owner == "dave" and all(dave.get(i).owner == "dave" for i in done.ids.values())


def test_a_failed_import_leaves_the_store_unchanged(origin: memcubed.Memcubed, open_mc: OpenMc,
                                                    tmp_path: Path) -> None:
    data, _ = _export(origin, namespace="trip")
    full = open_mc(tmp_path / "full.db", embedder="none", settings=Settings(quota_cubes=2))
    before = _state(full)
    with pytest.raises(BudgetExceeded):
        full.import_bundle(data, namespace="x")
    assert _state(full) == before


def test_the_registry_carries_bundles_base64_encoded(origin: memcubed.Memcubed, target: memcubed.Memcubed) -> None:
    from memcubed.kernel.registry import OPERATIONS

    exported = OPERATIONS.run(origin.kernel, "export_bundle", {"namespace": "trip"}, "alice")
    assert exported.report.cubes == 3
    report = OPERATIONS.run(target.kernel, "import_bundle", {"data": exported.data, "namespace": "n"}, "carol")
    assert report.owner == "carol" and report.sha256 == exported.report.sha256
    with pytest.raises(AccessDenied):
        OPERATIONS.validate(target.kernel, "import_bundle", {"data": exported.data, "namespace": "n",
                                                             "owner": "dave"}, "carol")
    with pytest.raises(ValidationError):
        OPERATIONS.validate(target.kernel, "import_bundle", {"data": "not base64 !", "namespace": "n"}, "carol")
    assert OPERATIONS["export_bundle"].audit == "export" and OPERATIONS["import_bundle"].audit == "import"


def test_an_export_that_cannot_be_written_is_not_audited(origin: memcubed.Memcubed, tmp_path: Path) -> None:
    records = len(origin.audit())
    with pytest.raises(memcubed.StorageError):
        origin.as_principal("alice").export_bundle(tmp_path / "missing" / "out.mcb", namespace="trip")
    assert len(origin.audit()) == records
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_blob_no_cube_references_is_refused(origin: memcubed.Memcubed, target: memcubed.Memcubed) -> None:
    import hashlib

    data, _ = _export(origin, namespace="trip")
    extra = b"smuggled bytes"
    digest = hashlib.sha256(extra).hexdigest()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(entries["manifest.json"])
    manifest["entries"][f"blobs/{digest}"] = {"sha256": digest, "size": len(extra)}
    entries |= {"manifest.json": json.dumps(manifest).encode(), f"blobs/{digest}": extra}
    before = _state(target)
    with pytest.raises(CorruptBundle, match="no cube references"):
        target.import_bundle(_zip(list(entries.items())), namespace="x")
    assert _state(target) == before and not target.kernel.blobs.exists(digest)
