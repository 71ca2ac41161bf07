"""CLI commands for portable bundles: ``memcubed export --out f.mcb …`` and ``memcubed import f.mcb --namespace …``.

``import`` takes either file kind: a bundle (a zip: it starts with ``PK``, or is named ``*.mcb``) or the
JSONL of ``add`` objects it always took (see ``bulk.import_jsonl``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from memcubed.errors import ValidationError
from memcubed.interfaces.cli.bulk import import_jsonl
from memcubed.interfaces.cli.render import emit, with_progress
from memcubed.interfaces.cli.state import handle_errors, state

__all__ = ["export", "import_file", "is_bundle"]

_ZIP_MAGIC = b"PK\x03\x04"


def is_bundle(path: Path) -> bool:
    """Whether ``path`` is meant as a bundle: named ``*.mcb``, or a zip file by its first bytes."""
    if path.suffix.lower() == ".mcb":
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(4) == _ZIP_MAGIC
    except OSError:
        return False


@handle_errors
def export(ctx: typer.Context,
           out: Annotated[Path, typer.Option("--out", "-o", help="the bundle file to write (e.g. memories.mcb)")],
           cube_ids: Annotated[list[str] | None, typer.Argument(help="cubes to export by id")] = None,
           namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="export every readable cube "
                                                         "of this namespace")] = None,
           tags: Annotated[list[str] | None, typer.Option("--tag", "-t", help="only cubes with every tag "
                                                          "(repeatable)")] = None) -> None:
    """Write the cubes you may read (by id, namespace and/or tag) into one portable bundle file, with every
    version, text, KV segment and adapter; derived cubes go in only with all their sources."""
    cli = state(ctx)
    client = cli.client()
    report = with_progress(f"exporting to {out}", partial(client.export_bundle, out, cube_ids=cube_ids or [],
                                                                  namespace=namespace, tags=tags or []))
    if cli.json:
        emit(report)
        return
    print(f"exported {report.cubes} cubes ({report.versions} versions, {report.blobs} blobs, {report.bytes} bytes) "
          f"to {out}; sha256 {report.sha256}")
    for item in report.left_out:
        print(f"left out {item.id}: {item.reason}")


@handle_errors
def import_file(ctx: typer.Context, path: Path,
                namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="bundles: the namespace "
                                                              "the cubes go to (required)")] = None,
                owner: Annotated[str | None, typer.Option(help="bundles: who owns the imported cubes (yourself by "
                                                          "default; another principal needs an admin)")] = None,
                batch: Annotated[int, typer.Option(help="JSONL: memories per atomic batch")] = 256) -> None:
    """Import a bundle (``*.mcb``: every hash is verified, cubes get new ids) or JSONL of ``add`` objects (every
    line is checked before any write)."""
    if not is_bundle(path):
        import_jsonl(ctx, path, batch=batch)
        return
    if namespace is None:
        raise ValidationError("importing a bundle needs --namespace", field="namespace")
    cli = state(ctx)
    client = cli.client()
    report = with_progress(f"importing {path}", partial(client.import_bundle, path, namespace=namespace, owner=owner))
    if cli.json:
        emit(report)
        return
    print(f"imported {report.cubes} cubes ({report.versions} versions, {report.blobs} new blobs) into "
          f"{report.namespace} for {report.owner}")
    for cube_id, why in report.unusable.items():
        print(f"unusable until its model is configured: {cube_id} ({why})")
