"""Routes for portable bundles, written by hand: the bundle travels as a file, not as JSON.

``export_bundle`` answers with the bundle file itself (``application/zip``) and its report in headers;
``import_bundle`` takes the raw file as the request body (``application/octet-stream`` or
``application/zip``), capped by the server's body limit as it streams in (``max_body_bytes``) and then by
the kernel's own bundle limits. MCP and the registry carry the same bytes base64-encoded instead.
"""

from __future__ import annotations

import io
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response

from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.schemas.base import Name
from memcubed.schemas.bundle import BundleImportReport, BundleSelection

__all__ = ["router"]

router = APIRouter(tags=["bundle"], responses=ERROR_RESPONSES)

_FILE = {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}


@router.post("/bundles/export", operation_id="export_bundle", response_class=Response,
             responses={200: {"description": "the bundle file", **_FILE}})
def export_bundle(body: BundleSelection, kernel: KernelDep, caller: Caller) -> Response:
    """Write the cubes you may read (by id, namespace and/or tags) into one bundle and download it; derived
    cubes go in only with all their sources (``X-Memcubed-Left-Out`` counts the ones left out)."""
    buffer = io.BytesIO()
    report = kernel.export_bundle(body, principal=caller, out=buffer)
    return Response(buffer.getvalue(), media_type="application/zip", headers={
        "Content-Disposition": 'attachment; filename="memcubed-bundle.mcb"',
        "X-Memcubed-Bundle-Sha256": report.sha256, "X-Memcubed-Cubes": str(report.cubes),
        "X-Memcubed-Left-Out": str(len(report.left_out))})


@router.post("/bundles/import", operation_id="import_bundle", openapi_extra={"requestBody": {
    "required": True, "description": "the bundle file", "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        **_FILE["content"]}}})
async def import_bundle(request: Request, kernel: KernelDep, caller: Caller,
                        namespace: Annotated[Name, Query(description="the namespace the cubes go to")],
                        owner: Annotated[Name | None, Query(description="who owns them (yourself by default; "
                                                            "another principal needs an administrator)")] = None
                        ) -> BundleImportReport:
    """Upload a bundle and load its cubes into ``namespace`` under new ids; every hash and size is verified
    before anything is written, and a failure leaves the store unchanged."""
    data = await request.body()
    return await anyio.to_thread.run_sync(lambda: kernel.import_bundle(data, principal=caller, namespace=namespace,
                                                                       owner=owner))
