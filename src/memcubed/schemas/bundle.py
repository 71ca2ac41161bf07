"""Schemas of portable MemCube bundles (``export_bundle`` / ``import_bundle``): what is selected, the manifest
a bundle file carries, the per-cube entries, and the reports both operations return."""

from __future__ import annotations

from datetime import datetime

from pydantic import Base64Bytes, BaseModel, ConfigDict, Field

from memcubed.cube.model import CubeKind, MemCube
from memcubed.schemas.base import CubeId, Input, Name, Tag
from memcubed.schemas.ops import HistoryEntry

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "BundleCube",
    "BundleExport",
    "BundleExportReport",
    "BundleImportInput",
    "BundleImportReport",
    "BundleManifest",
    "BundleSelection",
    "LeftOut",
    "ManifestCube",
    "ManifestEntry",
]

BUNDLE_FORMAT = "memcubed.bundle"
BUNDLE_FORMAT_VERSION = 1


class BundleSelection(Input):
    """Which cubes to export: the given ids, and/or every cube of ``namespace`` (narrowed by ``tags``).

    With ``cube_ids`` only, exactly those; with ``namespace`` (and optionally ``tags``), every cube there the
    caller may read; ``tags`` alone select across the caller's readable cubes of the ``default`` namespace.
    """

    cube_ids: list[CubeId] = Field(default_factory=list, max_length=10_000, description="cubes to export by id")
    namespace: Name | None = Field(default=None, description="export every readable cube of this namespace")
    tags: list[Tag] = Field(default_factory=list, max_length=64, description="only cubes carrying every tag")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ManifestEntry(_Frozen):
    """One file inside the bundle, as the manifest vouches for it."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class ManifestCube(_Frozen):
    """One exported cube, as the manifest lists it (``entry`` holds its ``BundleCube``)."""

    id: CubeId
    kind: CubeKind
    entry: str = Field(pattern=r"^cubes/[0-9]{1,6}\.json$")
    model: str | None = Field(default=None, description="fingerprint of the model a tensor cube belongs to (it "
                              "covers the model's config, weights and tokenizer)")
    tokenizer: str | None = Field(default=None, description="the tokenizer the KV tokens were made by (the model "
                                  "fingerprint: memcubed identifies a tokenizer only through its model)")
    kv_format: int | None = Field(default=None, description="KV segment serialization schema version")
    adapter_format: int | None = Field(default=None, description="adapter serialization schema version")
    blobs: list[str] = Field(default_factory=list, description="bundle entries holding its tensor blobs")


class LeftOut(_Frozen):
    """A selected cube the export did not include, and why."""

    id: str
    reason: str


class BundleManifest(_Frozen):
    """``manifest.json``: format versions, every other entry's hash and size, and the cubes."""

    format: str = Field(pattern=r"^memcubed\.bundle$")
    format_version: int = Field(ge=1)
    memcubed_version: str = Field(max_length=64)
    created_at: datetime
    exported_by: str = Field(max_length=128)
    entries: dict[str, ManifestEntry]
    cubes: list[ManifestCube]
    left_out: list[LeftOut] = Field(default_factory=list)


class BundleCube(_Frozen):
    """A ``cubes/N.json`` entry: the cube's current state and every version of it, oldest first."""

    cube: MemCube
    versions: list[HistoryEntry] = Field(min_length=1)


class BundleExportReport(BaseModel):
    """What ``export_bundle`` wrote."""

    cubes: int = Field(description="cubes in the bundle")
    versions: int = Field(description="versions in the bundle, all cubes together")
    blobs: int = Field(description="tensor blobs (KV segments, adapters) in the bundle")
    bytes: int = Field(description="size of the bundle file")
    sha256: str = Field(description="sha256 of the bundle file")
    exported: list[str] = Field(description="ids of the exported cubes")
    left_out: list[LeftOut] = Field(description="selected cubes left out, with the reason")


class BundleExport(BaseModel):
    """The ``export_bundle`` operation's answer where a file cannot be streamed (MCP, the registry): the
    bundle's bytes (base64 in JSON) and the report."""

    data: str = Field(description="the bundle file, base64-encoded")
    report: BundleExportReport


class BundleImportInput(Input):
    """``import_bundle`` where a file cannot be uploaded as is (MCP, the registry): its bytes base64-encoded."""

    data: Base64Bytes = Field(description="the bundle file, base64-encoded")
    namespace: Name = Field(description="the namespace every imported cube goes to")
    owner: Name | None = Field(default=None, description="who owns the imported cubes (yourself when omitted; "
                               "another principal needs an administrator)")


class BundleImportReport(BaseModel):
    """What ``import_bundle`` stored."""

    cubes: int
    versions: int
    blobs: int
    namespace: str
    owner: str
    ids: dict[str, str] = Field(description="bundle cube id -> new cube id")
    unusable: dict[str, str] = Field(default_factory=dict, description="new id of each tensor cube whose model this "
                                     "store lacks -> why; using it raises ModelUnavailable until the model is "
                                     "configured here")
    sha256: str = Field(description="sha256 of the bundle file")
