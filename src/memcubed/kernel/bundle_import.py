"""``import_bundle``: load a verified bundle under a chosen owner and namespace, all or nothing.

Order of work: read and verify the whole file (limits, names, every hash and size: ``engines.bundle``),
parse and check every cube entry against the manifest and the store's limits, embed the texts, then put
the tensor blobs (content-addressed: an existing blob is shared) and write every cube and version in one
transaction. A failure anywhere leaves the store as it was: the transaction rolls back and the blobs this
import added are removed again unless something else references them by then.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO

import pydantic

from memcubed.backends.base import IndexEntry
from memcubed.backends.models.base import KVLanguageModel, LanguageModel
from memcubed.cube.ids import new_cube_id
from memcubed.cube.model import CubeKind, CubeState, CubeStats, DerivedRef, MemCube
from memcubed.engines._tensorfile import header_metadata
from memcubed.engines.bundle import BundleLimits, ReadBundle, blob_entry, read_bundle
from memcubed.engines.kvcache.serialize import FORMAT as KV_FORMAT
from memcubed.engines.kvcache.serialize import SCHEMA_VERSION as KV_VERSION
from memcubed.engines.lora.serialize import FORMAT as ADAPTER_FORMAT
from memcubed.engines.lora.serialize import SCHEMA_VERSION as ADAPTER_VERSION
from memcubed.errors import AccessDenied, CorruptBundle, MemcubedError, NotFound, UnknownPrincipal, ValidationError
from memcubed.kernel import audit, limits
from memcubed.kernel.base import Progress
from memcubed.kernel.derivation import DerivationOps
from memcubed.kernel.validation import check_text, parse
from memcubed.schemas.base import Input, Name, Tag
from memcubed.schemas.bundle import BundleCube, BundleImportReport
from memcubed.schemas.ops import HistoryEntry, PrincipalPublic

__all__ = ["BundleImportOps"]

IMPORTED = "imported"
"""``meta`` key of an imported tensor cube (its meta is system-owned): where it came from, and whether this
store had its model when it was imported."""


class _Target(Input):
    namespace: Name
    owner: Name | None = None


class BundleImportOps(DerivationOps):
    """``import_bundle`` and its checks."""

    def import_bundle(self, file: str | Path | bytes | IO[bytes], *, principal: str, namespace: str,
                      owner: str | None = None, lms: Sequence[LanguageModel | KVLanguageModel] | None = None,
                      progress: Progress | None = None) -> BundleImportReport:
        """Load a bundle's cubes into ``namespace``, owned by ``owner`` (the principal by default), under new ids.

        Every hash and size is verified before anything is written. Lineage is remapped inside the bundle;
        grants are not imported (the imported cubes are the owner's alone). A tensor cube whose model this
        store does not have is imported but unusable (``report.unusable``; using it raises
        ``ModelUnavailable``) until that model is configured here. Audited as ``import``, one record per cube.

        Args:
            file: a path, the bundle's bytes, or a readable binary file.
            lms: the models to check tensor cubes against (default: every configured open model, loaded).
            progress: called with (cubes written, cubes in all).

        Raises:
            ValidationError: not a bundle, an unsafe entry name, a malformed manifest or cube entry.
            BudgetExceeded: a bundle limit (``bundle_*`` settings), a content limit or the owner's quota.
            CorruptBundle: an entry fails its hash or size check, or the bundle contradicts itself (a derived
                cube without its sources, a blob it lacks).
            AccessDenied: ``owner`` is another principal and the caller is not an administrator.
            UnknownPrincipal: ``owner`` does not exist.
        """
        actor = self._actor(principal)
        target = parse(_Target, {"namespace": namespace, "owner": owner})
        owner_name = self._import_owner(target.owner, actor)
        bundle = read_bundle(_bytes_of(file, self.settings.bundle_max_bytes), BundleLimits(
            max_bytes=self.settings.bundle_max_bytes, max_entries=self.settings.bundle_max_entries,
            max_entry_bytes=self.settings.bundle_max_entry_bytes, max_ratio=self.settings.bundle_max_ratio))
        cubes = self._bundle_cubes(bundle)
        ids = {bc.cube.id: new_cube_id() for bc in cubes}
        present = self._present_models(lms) if any(bc.cube.kind is not CubeKind.PLAINTEXT for bc in cubes) else set()
        unusable = {ids[bc.cube.id]: f"model {bc.cube.model} is not configured in this store" for bc in cubes
                    if bc.cube.kind is not CubeKind.PLAINTEXT and bc.cube.model not in present}
        mapped = [_remapped(bc, ids, owner=owner_name, namespace=target.namespace, sha256=bundle.sha256,
                            usable=ids[bc.cube.id] not in unusable) for bc in cubes]
        indexed = [c.kind is CubeKind.PLAINTEXT and c.text is not None for c, _ in mapped]
        embedded = iter(self._embed([c.text or "" for (c, _), keep in zip(mapped, indexed, strict=True) if keep]))
        vectors = [next(embedded) if keep else None for keep in indexed]
        windows = iter(self._embed_chunks([c.text for (c, _), keep in zip(mapped, indexed, strict=True) if keep]))
        chunks = [next(windows) if keep else () for keep in indexed]
        origin = {new: old for old, new in ids.items()}
        added = self._put_blobs(bundle)
        try:
            with self._write() as pending:
                for done, ((cube, versions), vector, chunk, keep) in enumerate(
                        zip(mapped, vectors, chunks, indexed, strict=True), start=1):
                    self.store.insert_cube(cube, IndexEntry(context=self._context(cube), vector=vector, chunks=chunk)
                                           if keep else IndexEntry())
                    for entry in versions:
                        self.store.insert_version(entry)
                    self._audit(pending, actor.name, "import", cube.id, cube.version,
                                {"from": origin[cube.id], "bundle": bundle.sha256, "versions": len(versions),
                                 "namespace": cube.namespace, "owner": cube.owner,
                                 audit.CONTENT: audit.content_hash(cube, self.seal)})
                    if progress is not None:
                        progress(done, len(mapped))
                limits.check_quota(self.store, self.settings, owner_name)
        except BaseException:
            self._release_blobs(added)
            raise
        return BundleImportReport(cubes=len(mapped), versions=sum(len(v) for _, v in mapped), blobs=len(added),
                                  namespace=target.namespace, owner=owner_name, ids=ids, unusable=unusable,
                                  sha256=bundle.sha256)

    def _import_owner(self, owner: str | None, actor: PrincipalPublic) -> str:
        """The owner the imported cubes get: the caller, or (administrators only) another live principal."""
        if owner is None or owner == actor.name:
            return actor.name
        if not actor.is_admin:
            raise AccessDenied("only administrators may import cubes for another principal", principal=actor.name,
                               owner=owner)
        found = self.store.get_principal(owner)
        if found is None or found.deleted_at is not None:
            raise UnknownPrincipal(f"unknown principal {owner!r}", principal=owner)
        return found.name

    def _bundle_cubes(self, bundle: ReadBundle) -> list[BundleCube]:
        """Parse every cube entry, check it against the manifest, itself and this store's limits."""
        cubes: list[BundleCube] = []
        listed: dict[str, BundleCube] = {}
        for item in bundle.manifest.cubes:
            try:
                bc = BundleCube.model_validate_json(bundle.entries[item.entry])
            except pydantic.ValidationError as exc:
                raise ValidationError(f"bundle entry {item.entry!r} is not a valid cube: {str(exc)[:300]}",
                                      field="file", entry=item.entry) from exc
            cube = bc.cube
            if cube.id != item.id or cube.kind is not item.kind or cube.model != item.model:
                raise CorruptBundle(f"bundle entry {item.entry!r} disagrees with the manifest", entry=item.entry)
            self._check_cube(bc, bundle, listed)
            listed[cube.id] = bc
            cubes.append(bc)
        used = {blob_entry(d) for bc in cubes for entry in bc.versions
                for d in [*entry.cube.segments, *([entry.cube.payload.sha256] if entry.cube.payload else [])]}
        stray = sorted(name for name in bundle.entries if name.startswith("blobs/") and name not in used)
        if stray:  # it would be stored and never referenced: garbage no cube could ever release
            raise CorruptBundle(f"the bundle holds blobs no cube references: {stray[:3]}", entries=stray[:20])
        return cubes

    def _check_cube(self, bc: BundleCube, bundle: ReadBundle, earlier: dict[str, BundleCube]) -> None:
        cube = bc.cube
        numbers = [entry.version for entry in bc.versions]
        if (any(entry.cube.id != cube.id or entry.cube.version != entry.version for entry in bc.versions)
                or numbers != sorted(set(numbers)) or numbers[-1] != cube.version):
            raise CorruptBundle(f"the versions of bundle cube {cube.id} do not belong to it in order", id=cube.id)
        if cube.state is CubeState.DELETED or cube.forgotten:
            raise ValidationError(f"bundle cube {cube.id} is deleted; bundles carry live cubes only", id=cube.id)
        for entry in bc.versions:
            _check_fields(entry)
            if entry.cube.text is not None:
                check_text(entry.cube.text, self.settings.max_text_chars)
            limits.check_content(self.settings, meta=entry.cube.meta, tags=entry.cube.tags)
            for ref in entry.cube.derived_from:
                source = earlier.get(ref.id)
                if source is None or ref.version not in {v.version for v in source.versions}:
                    raise CorruptBundle(f"bundle cube {cube.id} is derived from {ref.id} v{ref.version}, which the"
                                        " bundle does not hold before it", id=cube.id, source=ref.id)
        if cube.kind is CubeKind.PLAINTEXT:
            if cube.payload is not None or cube.segments:
                raise ValidationError(f"plaintext bundle cube {cube.id} references tensor blobs", id=cube.id)
            return
        if cube.model is None:
            raise ValidationError(f"bundle cube {cube.id} is a {cube.kind.value} cube without a model", id=cube.id)
        fmt, version = (KV_FORMAT, KV_VERSION) if cube.kind is CubeKind.ACTIVATION else (ADAPTER_FORMAT,
                                                                                          ADAPTER_VERSION)
        for entry in bc.versions:
            for digest in [*entry.cube.segments, *([entry.cube.payload.sha256] if entry.cube.payload else [])]:
                data = bundle.entries.get(blob_entry(digest))
                if data is None:
                    raise CorruptBundle(f"bundle cube {cube.id} references blob {digest}, which the bundle lacks",
                                        id=cube.id, sha256=digest)
                _check_blob(data, fmt=fmt, version=version, model=entry.cube.model or cube.model, cube_id=cube.id)

    def _present_models(self, lms: Sequence[LanguageModel | KVLanguageModel] | None) -> set[str]:
        """Fingerprints of the open models tensor cubes may be used with here."""
        if lms is None:
            found: list[LanguageModel | KVLanguageModel] = []
            for model_id in self.models.ids():
                try:
                    found.append(self.models.open(model_id))
                except MemcubedError:  # an API model, or one that cannot load here: it is not present
                    continue
            lms = found
        return {lm.fingerprint for lm in lms if isinstance(lm, KVLanguageModel)}

    def _put_blobs(self, bundle: ReadBundle) -> list[str]:
        """Store the bundle's blobs (before the transaction that references them); return the ones that
        were not stored before, which a failed import removes again."""
        added: list[str] = []
        try:
            for name, data in bundle.entries.items():
                if name.startswith("blobs/"):
                    digest = name.removeprefix("blobs/")
                    if not self.blobs.exists(digest):
                        added.append(digest)
                    self.blobs.put(data)
        except BaseException:
            self._release_blobs(added)
            raise
        return added


_TAGS = pydantic.TypeAdapter(list[Tag])


def _check_fields(entry: HistoryEntry) -> None:
    """What ``MemCube`` itself leaves unchecked but every write path checks: tags, timezone-aware times."""
    cube = entry.cube
    try:
        _TAGS.validate_python(cube.tags)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"bundle cube {cube.id} has a malformed tag", id=cube.id, field="tags") from exc
    if any(at.tzinfo is None for at in (entry.at, cube.created_at, cube.updated_at)):
        raise ValidationError(f"bundle cube {cube.id} has a time without a timezone", id=cube.id)


def _check_blob(data: bytes, *, fmt: str, version: int, model: str, cube_id: str) -> None:
    """A tensor blob must name its format, a known schema version and the cube's model in its header."""
    try:
        meta = header_metadata(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptBundle(f"a tensor blob of bundle cube {cube_id} is malformed: {exc}", id=cube_id) from exc
    if meta.get("format") != fmt:
        raise CorruptBundle(f"a tensor blob of bundle cube {cube_id} is not a {fmt} payload", id=cube_id)
    if meta.get("schema_version") != str(version):
        raise ValidationError(f"a tensor blob of bundle cube {cube_id} is {fmt} schema version "
                              f"{str(meta.get('schema_version'))[:20]}; this memcubed reads version {version}",
                              id=cube_id, field="file")
    if meta.get("fingerprint") != model:
        raise CorruptBundle(f"a tensor blob of bundle cube {cube_id} belongs to another model than the cube says",
                            id=cube_id)


def _remapped(bc: BundleCube, ids: dict[str, str], *, owner: str, namespace: str, sha256: str,
              usable: bool) -> tuple[MemCube, list[HistoryEntry]]:
    """The cube and its versions as this store keeps them: new ids (lineage too), the new owner and namespace,
    no grants, fresh statistics; a tensor cube records where it came from in its (system-owned) meta."""
    def remap(cube: MemCube) -> MemCube:
        meta = cube.meta
        if cube.kind is not CubeKind.PLAINTEXT:
            meta = {**meta, IMPORTED: {"from": cube.id, "bundle": sha256, "model_present": usable}}
        return cube.model_copy(update={
            "id": ids[cube.id], "owner": owner, "namespace": namespace, "acl": [], "acl_version": 0,
            "stats": CubeStats(), "meta": meta,
            "derived_from": [DerivedRef(id=ids[ref.id], version=ref.version) for ref in cube.derived_from]})

    versions = [entry.model_copy(update={"cube": remap(entry.cube)}) for entry in bc.versions[:-1]]
    current = remap(bc.cube)
    versions.append(bc.versions[-1].model_copy(update={"cube": current}))
    return current, versions


def _bytes_of(file: str | Path | bytes | IO[bytes], limit: int) -> bytes | IO[bytes]:
    """The bundle as bytes or an open file; a path is read here (``NotFound`` when it cannot be)."""
    if isinstance(file, (bytes, bytearray)):
        return bytes(file)
    if isinstance(file, (str, Path)):
        try:
            with Path(file).open("rb") as handle:
                return handle.read(limit + 1)
        except OSError as exc:
            raise NotFound(f"cannot read the bundle {file}: {exc}", path=str(file)) from exc
    if not hasattr(file, "read"):
        raise ValidationError("file must be a path, bytes or a readable binary file", field="file")
    return file
