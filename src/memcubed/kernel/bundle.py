"""Portable MemCube bundles: ``export_bundle`` writes the cubes a principal may read, in every form, into one
verified file; ``import_bundle`` (``kernel.bundle_import``) loads one under a chosen owner and namespace.

A bundle carries, per cube, its metadata (owner, source, times, importance, tags, lineage), every version
(its history), its text and its tensor blobs (KV segments, adapter), with a manifest of hashes, sizes and
format versions. It never carries grants or access statistics: the principals of the exporting store mean
nothing to the importing one. Rights flow through derivation here too: a derived cube (activation,
parameter, extracted fact) is exported only together with every source it encodes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from memcubed.backends.base import SearchScope
from memcubed.cube.model import CubeKind, CubeState, CubeStats, MemCube, Right
from memcubed.engines._tensorfile import header_metadata
from memcubed.engines.bundle import BundleWriter, blob_entry
from memcubed.errors import StorageError, ValidationError
from memcubed.kernel.base import Progress, utcnow
from memcubed.kernel.bundle_import import BundleImportOps
from memcubed.kernel.validation import parse
from memcubed.schemas.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    BundleCube,
    BundleExportReport,
    BundleManifest,
    BundleSelection,
    LeftOut,
    ManifestCube,
    ManifestEntry,
)
from memcubed.schemas.ops import HistoryEntry, PrincipalPublic, SearchFilters

__all__ = ["BundleOps"]

_ALL = 2**31 - 1
_PAGE = 1000
_EXPORTED_STATES = [CubeState.ACTIVE, CubeState.STALE, CubeState.ARCHIVED]
_OUTSIDE = "a source is not in the bundle (not selected, not readable by you, or deleted)"


class BundleOps(BundleImportOps):
    """Export and import of portable bundles."""

    def export_bundle(self, selection: BundleSelection | dict[str, Any], *, principal: str,
                      out: str | Path | IO[bytes], progress: Progress | None = None) -> BundleExportReport:
        """Write the selected cubes the principal may read into one bundle file at ``out``.

        Every version of each cube goes in, with its text and its tensor blobs; a derived cube goes in only
        with all its sources (otherwise it is left out, and the report says why). Audited as ``export``.

        Args:
            selection: cube ids and/or a namespace and/or tags (see ``BundleSelection``); selecting nothing
                writes an empty bundle.
            out: a file path (created or replaced) or a writable binary file.
            progress: called with (cubes written, cubes in all).

        Raises:
            ValidationError: a malformed selection.
            NotFound: a selected id does not exist, is deleted, or the principal cannot read it.
            IntegrityError: a stored blob fails its hash check (nothing is written to ``out``).
            StorageError: ``out`` cannot be written.
        """
        actor = self._actor(principal)
        sel = parse(BundleSelection, selection)
        chosen = self._selected(sel, actor)
        kept, left_out = _closed_under_derivation(chosen)
        with tempfile.SpooledTemporaryFile(max_size=64 * 2**20) as spool:
            writer = BundleWriter(spool)
            listed, versions, blobs = self._write_cubes(writer, kept, progress)
            writer.finish(BundleManifest(
                format=BUNDLE_FORMAT, format_version=BUNDLE_FORMAT_VERSION, memcubed_version=_version(),
                created_at=utcnow(), exported_by=actor.name,
                entries={name: ManifestEntry(sha256=h, size=n) for name, (h, n) in sorted(writer.entries.items())},
                cubes=listed, left_out=left_out))
            size = spool.tell()
            spool.seek(0)
            digest = hashlib.file_digest(spool, "sha256").hexdigest()
            report = BundleExportReport(cubes=len(kept), versions=versions, blobs=blobs, bytes=size, sha256=digest,
                                        exported=[c.id for c in kept], left_out=left_out)
            spool.seek(0)
            target, stream = (Path(out), None) if isinstance(out, (str, Path)) else (None, out)
            staged = _stage(spool, target) if target is not None else None
            try:
                with self._write() as pending:
                    self._audit(pending, actor.name, "export", None, None,
                                {"cubes": report.exported[:1000], "left_out": [x.id for x in left_out][:1000],
                                 "sha256": digest, "bytes": size, "selection": sel.model_dump(mode="json")})
            except BaseException:
                if staged is not None:
                    staged.unlink(missing_ok=True)
                raise
            if staged is not None and target is not None:
                staged.replace(target)
            elif stream is not None:
                shutil.copyfileobj(spool, stream)
        return report

    def _selected(self, sel: BundleSelection, actor: PrincipalPublic) -> dict[str, MemCube]:
        """The selected cubes the actor may read, by id: named ids (each must be readable: else ``NotFound``,
        so ids cannot be probed) and the readable cubes of the namespace/tags selection."""
        chosen = {cube.id: cube for cube in (self._load(cid, actor, Right.READ) for cid in sel.cube_ids)}
        if sel.namespace is not None or sel.tags:
            scope = SearchScope(principal=actor.name, is_admin=actor.is_admin, namespace=sel.namespace or "default",
                                filters=SearchFilters(tags=sel.tags or None, states=_EXPORTED_STATES))
            offset = 0
            while page := self.store.list_cubes(scope, limit=_PAGE, offset=offset):
                chosen.update((c.id, c) for c in page if not c.forgotten)
                offset += len(page)
        return chosen

    def _write_cubes(self, writer: BundleWriter, cubes: Sequence[MemCube], progress: Progress | None
                     ) -> tuple[list[ManifestCube], int, int]:
        """Write each cube's entry and blobs; return the manifest's cube list, versions and blobs written."""
        listed: list[ManifestCube] = []
        versions = 0
        for done, cube in enumerate(cubes, start=1):
            digests = [*cube.segments, *([cube.payload.sha256] if cube.payload else [])]
            formats: dict[str, int] = {}
            for digest in dict.fromkeys(digests):
                data = self.blobs.get(digest)  # hash-checked: a corrupt blob stops the export
                if blob_entry(digest) not in writer.entries:
                    writer.add(blob_entry(digest), data, compress=False)
                formats[digest] = _format_version(data)
            # Versions written since ``cube`` was loaded (a concurrent update) are not part of this snapshot.
            history = [_portable(entry, set(digests))
                       for entry in self.store.list_versions(cube.id, limit=_ALL, offset=0)
                       if entry.version <= cube.version]
            entry = f"cubes/{done:06d}.json"
            writer.add(entry, BundleCube(cube=_stripped(cube), versions=history).model_dump_json().encode())
            versions += len(history)
            tensor = cube.kind is not CubeKind.PLAINTEXT
            listed.append(ManifestCube(
                id=cube.id, kind=cube.kind, entry=entry, model=cube.model, tokenizer=cube.model if tensor else None,
                kv_format=max(formats.values(), default=None) if cube.kind is CubeKind.ACTIVATION else None,
                adapter_format=max(formats.values(), default=None) if cube.kind is CubeKind.PARAMETER else None,
                blobs=[blob_entry(d) for d in dict.fromkeys(digests)]))
            if progress is not None:
                progress(done, len(cubes))
        blobs = sum(1 for name in writer.entries if name.startswith("blobs/"))
        return listed, versions, blobs


def _closed_under_derivation(chosen: dict[str, MemCube]) -> tuple[list[MemCube], list[LeftOut]]:
    """The chosen cubes whose every source is exported too (repeatedly: leaving a cube out may leave out
    what was derived from it), sources before what derives from them; and the ones left out, with why."""
    kept = dict(chosen)
    left_out: list[LeftOut] = []
    changed = True
    while changed:
        changed = False
        for cube in list(kept.values()):
            missing = [ref for ref in cube.derived_from if ref.id not in kept]
            if missing:
                del kept[cube.id]
                left_out.append(LeftOut(id=cube.id, reason=f"derived cube: {_OUTSIDE} ({missing[0].id})"))
                changed = True
    ordered: list[MemCube] = []
    placed: set[str] = set()
    while len(ordered) < len(kept):  # sources first: derivation is acyclic (a source predates its derived cube)
        ready = [c for cid, c in kept.items() if cid not in placed and all(r.id in placed for r in c.derived_from)]
        if not ready:
            raise ValidationError("the selected cubes' derivation has a cycle", field="selection")
        for cube in sorted(ready, key=lambda c: c.id):
            ordered.append(cube)
            placed.add(cube.id)
    return ordered, left_out


def _stripped(cube: MemCube) -> MemCube:
    """A cube as a bundle carries it: no grants, no access statistics (they belong to the exporting store)."""
    return cube.model_copy(update={"acl": [], "acl_version": 0, "stats": CubeStats()})


def _portable(entry: HistoryEntry, exported: set[str]) -> HistoryEntry:
    """A version as a bundle carries it: stripped like the cube, and without references to tensor blobs the
    bundle does not hold (an older version's KV, released when it was recompiled)."""
    cube = _stripped(entry.cube)
    if (cube.payload is not None and cube.payload.sha256 not in exported) or any(s not in exported
                                                                                for s in cube.segments):
        cube = cube.model_copy(update={"payload": None, "segments": []})
    return entry.model_copy(update={"cube": cube})


def _format_version(data: bytes) -> int:
    """The serialization schema version a tensor blob's header names (0 when it names none)."""
    try:
        return int(header_metadata(data).get("schema_version", "0"))
    except ValueError:
        return 0


def _stage(spool: IO[bytes], target: Path) -> Path:
    """Write the finished bundle to a temporary file next to ``out`` (renamed into place once audited).

    Raises:
        StorageError: the folder of ``out`` cannot be written.
    """
    tmp: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as handle:
            tmp = Path(handle.name)
            shutil.copyfileobj(spool, handle)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write the bundle to {target}: {exc}", path=str(target)) from exc
    return tmp


def _version() -> str:
    try:
        return importlib.metadata.version("memcubed")
    except importlib.metadata.PackageNotFoundError:  # a source tree that is not installed
        return "0+unknown"
