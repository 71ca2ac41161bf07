"""The Python API's bundle methods (``Memcubed.export_bundle`` / ``import_bundle``), kept apart by concern."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO

from memcubed.interfaces.api.base import ClientBase
from memcubed.kernel import Progress
from memcubed.kernel.types import KVLanguageModel, LanguageModel
from memcubed.schemas.bundle import BundleExportReport, BundleImportReport

__all__ = ["BundleMethods"]


class BundleMethods(ClientBase):
    """Portable bundles, as the client's principal (mixed into ``Memcubed``)."""


    def export_bundle(self, out: str | Path | IO[bytes], *, cube_ids: Sequence[str] | None = None,
                      namespace: str | None = None, tags: Sequence[str] | None = None,
                      progress: Progress | None = None) -> BundleExportReport:
        """Write the selected cubes you may read (ids and/or a namespace and/or tags) into the bundle ``out``
        (a path or a writable binary file); derived cubes go in only with all their sources."""
        selection = {"cube_ids": list(cube_ids or []), "namespace": namespace, "tags": list(tags or [])}
        return self._open().export_bundle(selection, principal=self.principal, out=out, progress=progress)

    def import_bundle(self, file: str | Path | bytes | IO[bytes], *, namespace: str, owner: str | None = None,
                      lms: Sequence[LanguageModel | KVLanguageModel] | None = None,
                      progress: Progress | None = None) -> BundleImportReport:
        """Load a bundle (a path, its bytes or a binary file) into ``namespace`` under new ids, owned by you (or,
        for administrators, by ``owner``); every hash is verified before anything is written."""
        return self._open().import_bundle(file, principal=self.principal, namespace=namespace, owner=owner, lms=lms,
                                          progress=progress)
