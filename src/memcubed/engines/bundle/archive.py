"""The bundle file: a zip (stdlib) of ``manifest.json``, ``cubes/N.json`` and ``blobs/<sha256>`` entries.

Writing is deterministic for equal input (fixed entry times, sorted names). Reading trusts nothing: before
any entry is inflated the archive's own directory is checked against the limits (entry count, per-entry and
total unpacked size, compression ratio) and the names (only the three shapes above: no absolute path, no
``..``, no backslash, no duplicate, no symlink, no directory, no encryption); then every entry is read with
a bound, and its size and sha256 must match what the manifest says (and a blob's name must be its hash).

    ValidationError   not a zip, an unsafe or unexpected name, a malformed manifest or an unknown version
    BudgetExceeded    a limit is exceeded (the file, an entry, the entry count, a compression ratio)
    CorruptBundle     an entry's bytes, size or CRC disagree with the manifest or the zip directory,
                      an entry is missing or unlisted, the file is truncated inside an entry
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

import pydantic

from memcubed.errors import BudgetExceeded, CorruptBundle, ValidationError
from memcubed.schemas.bundle import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, BundleManifest

__all__ = ["MANIFEST", "BundleLimits", "BundleWriter", "ReadBundle", "blob_entry", "read_bundle"]

MANIFEST = "manifest.json"
_NAME = re.compile(r"^(?:manifest\.json|cubes/[0-9]{1,6}\.json|blobs/[0-9a-f]{64})$")
_EPOCH = (1980, 1, 1, 0, 0, 0)
_RATIO_FLOOR = 2**20  # entries smaller than this unpack to little whatever their ratio
_MAX_MANIFEST = 64 * 2**20


def blob_entry(digest: str) -> str:
    """The entry name of the tensor blob ``digest``."""
    return f"blobs/{digest}"


@dataclass(frozen=True)
class BundleLimits:
    """What ``read_bundle`` accepts (see the ``bundle_*`` settings)."""

    max_bytes: int
    max_entries: int
    max_entry_bytes: int
    max_ratio: float


class BundleWriter:
    """Collects entries in memory-bounded order and writes the zip; tracks each entry's hash and size."""

    def __init__(self, target: IO[bytes]) -> None:
        self._zip = zipfile.ZipFile(target, "w", allowZip64=True)
        self.entries: dict[str, tuple[str, int]] = {}

    def add(self, name: str, data: bytes, *, compress: bool = True) -> None:
        """Write entry ``name`` (JSON compressed, tensors stored: they do not shrink)."""
        info = zipfile.ZipInfo(name, date_time=_EPOCH)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = (stat.S_IFREG | 0o600) << 16
        self._zip.writestr(info, data)
        self.entries[name] = (hashlib.sha256(data).hexdigest(), len(data))

    def finish(self, manifest: BundleManifest) -> None:
        """Write ``manifest.json`` (last: it lists every other entry) and close the archive."""
        body = manifest.model_dump(mode="json")
        self.add(MANIFEST, json.dumps(body, sort_keys=True, indent=1).encode())
        self._zip.close()


@dataclass(frozen=True)
class ReadBundle:
    """A verified bundle: its manifest, every entry's bytes by name, and the file's sha256."""

    manifest: BundleManifest
    entries: dict[str, bytes]
    sha256: str
    size: int


def read_bundle(source: bytes | IO[bytes], limits: BundleLimits) -> ReadBundle:
    """Read and verify a bundle file completely (nothing is written anywhere).

    Raises:
        ValidationError / BudgetExceeded / CorruptBundle: see the module docstring.
    """
    data = source if isinstance(source, bytes) else source.read(limits.max_bytes + 1)
    if not isinstance(data, bytes):
        raise ValidationError("a bundle is read from bytes or a binary file", field="file")
    if len(data) > limits.max_bytes:
        raise BudgetExceeded(f"the bundle is over {limits.max_bytes} bytes (bundle_max_bytes)", field="file",
                             limit=limits.max_bytes)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise ValidationError(f"not a memcubed bundle (not a readable zip file: {exc})", field="file") from exc
    with archive:
        infos = _checked_directory(archive, limits)
        entries = {info.filename: _read_entry(archive, info) for info in infos}
    if MANIFEST not in entries:
        raise ValidationError("not a memcubed bundle: it has no manifest.json", field="file")
    manifest = _parse_manifest(entries.pop(MANIFEST))
    _check_entries(manifest, entries)
    return ReadBundle(manifest=manifest, entries=entries, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def _checked_directory(archive: zipfile.ZipFile, limits: BundleLimits) -> list[zipfile.ZipInfo]:
    """The archive's entries, after checking names and sizes as the directory declares them."""
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise BudgetExceeded(f"the bundle holds {len(infos)} entries; the limit (bundle_max_entries) is "
                             f"{limits.max_entries}", field="file", size=len(infos), limit=limits.max_entries)
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        if name.startswith(("/", "\\")) or "\\" in name or ".." in name.split("/") or ":" in name:
            raise ValidationError(f"unsafe entry name in the bundle: {name[:200]!r}", field="file")
        if not _NAME.match(name):
            raise ValidationError(f"unexpected entry in the bundle: {name[:200]!r}", field="file")
        if name in seen:
            raise ValidationError(f"the bundle repeats the entry {name!r}", field="file")
        seen.add(name)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode) or stat.S_ISDIR(mode) or info.is_dir():
            raise ValidationError(f"bundle entry {name!r} is a link or a folder, not a file", field="file")
        if info.flag_bits & 0x1:
            raise ValidationError(f"bundle entry {name!r} is encrypted", field="file")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValidationError(f"bundle entry {name!r} uses an unsupported compression", field="file")
        if info.file_size > limits.max_entry_bytes:
            raise BudgetExceeded(f"bundle entry {name!r} unpacks to {info.file_size} bytes; the limit "
                                 f"(bundle_max_entry_bytes) is {limits.max_entry_bytes}", field="file",
                                 size=info.file_size, limit=limits.max_entry_bytes)
        if info.file_size > _RATIO_FLOOR and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise BudgetExceeded(f"bundle entry {name!r} would expand {info.file_size // max(info.compress_size, 1)}"
                                 f"-fold; the limit (bundle_max_ratio) is {limits.max_ratio:g}", field="file",
                                 limit=limits.max_ratio)
        total += info.file_size
        if total > limits.max_bytes:
            raise BudgetExceeded(f"the bundle unpacks to over {limits.max_bytes} bytes (bundle_max_bytes)",
                                 field="file", limit=limits.max_bytes)
    return infos


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """One entry's bytes, never more than the directory declares (the CRC is checked at its end)."""
    try:
        with archive.open(info) as handle:
            data = handle.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib.error) as exc:
        raise CorruptBundle(f"bundle entry {info.filename!r} is damaged: {exc}", entry=info.filename) from exc
    if len(data) != info.file_size:
        raise CorruptBundle(f"bundle entry {info.filename!r} holds {len(data)} bytes, its header says "
                            f"{info.file_size}", entry=info.filename)
    return data


def _parse_manifest(raw: bytes) -> BundleManifest:
    if len(raw) > _MAX_MANIFEST:
        raise BudgetExceeded("manifest.json is too large", field="file", limit=_MAX_MANIFEST)
    try:
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise ValueError("the manifest is not an object")
        if body.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"format is not {BUNDLE_FORMAT}")
        if body.get("format_version") != BUNDLE_FORMAT_VERSION:
            raise ValueError(f"unknown bundle format_version {str(body.get('format_version'))[:20]!r} (this "
                             f"memcubed reads version {BUNDLE_FORMAT_VERSION})")
        return BundleManifest.model_validate(body)
    except (ValueError, pydantic.ValidationError) as exc:
        raise ValidationError(f"not a memcubed bundle: malformed manifest.json ({str(exc)[:300]})",
                              field="file") from exc


def _check_entries(manifest: BundleManifest, entries: dict[str, bytes]) -> None:
    """Every entry is listed with its true size and sha256, every listed entry is there, blobs hash to their name."""
    listed = set(manifest.entries)
    if MANIFEST in listed:
        raise CorruptBundle("the manifest lists itself", entry=MANIFEST)
    missing, unlisted = sorted(listed - set(entries)), sorted(set(entries) - listed)
    if missing or unlisted:
        raise CorruptBundle(f"the bundle's entries disagree with its manifest: missing {missing[:5]}, unlisted "
                            f"{unlisted[:5]}", missing=missing[:20], unlisted=unlisted[:20])
    for name, data in entries.items():
        vouched = manifest.entries[name]
        if len(data) != vouched.size:
            raise CorruptBundle(f"bundle entry {name!r} is {len(data)} bytes; the manifest says {vouched.size}",
                                entry=name, size=len(data), expected=vouched.size)
        actual = hashlib.sha256(data).hexdigest()
        if actual != vouched.sha256:
            raise CorruptBundle(f"bundle entry {name!r} fails its hash check (tampered or damaged)", entry=name,
                                sha256=vouched.sha256, actual=actual)
        if name.startswith("blobs/") and name.removeprefix("blobs/") != actual:
            raise CorruptBundle(f"bundle blob {name!r} does not hash to its name", entry=name, actual=actual)
    entry_names = {cube.entry for cube in manifest.cubes}
    if len(entry_names) != len(manifest.cubes) or len({c.id for c in manifest.cubes}) != len(manifest.cubes):
        raise ValidationError("the manifest repeats a cube or a cube entry", field="file")
    for cube in manifest.cubes:
        if cube.entry not in entries or any(b not in entries for b in cube.blobs):
            raise CorruptBundle(f"the manifest names entries of cube {cube.id} that the bundle lacks", id=cube.id)
