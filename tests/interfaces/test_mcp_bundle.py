"""The bundle tools of the MCP server: the file travels base64-encoded in the tool arguments and result."""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.server.mcpserver.exceptions import ToolError

import memcubed
from memcubed.interfaces.mcp import build_mcp_server
from memcubed.testing.conformance.fixtures import OpenMc


def test_export_and_import_through_mcp_tools(open_mc: OpenMc, tmp_path: Path) -> None:
    mc = open_mc(tmp_path / "mcp.db", embedder="none")
    for name in ("alice", "bob"):
        mc.create_principal(name)
    cube = mc.as_principal("alice").add("the wren sings at noon", namespace="garden")
    acting = {"who": "alice"}
    server = build_mcp_server(mc.kernel, lambda _ctx, _op: acting["who"])

    def call(name: str, request: dict[str, Any]) -> Any:
        return anyio.run(server.call_tool, name, {"request": request})

    exported = call("export_bundle", {"namespace": "garden"})
    body = exported.structured_content
    assert body["report"]["exported"] == [cube.id]
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(body["data"]))) as archive:
        assert "manifest.json" in archive.namelist()
    acting["who"] = "bob"
    imported = call("import_bundle", {"data": body["data"], "namespace": "copied"}).structured_content
    assert imported["owner"] == "bob" and mc.as_principal("bob").get(imported["ids"][cube.id]).text == cube.text
    with pytest.raises(ToolError, match="access_denied"):
        call("import_bundle", {"data": body["data"], "namespace": "copied", "owner": "alice"})
    with pytest.raises(ToolError, match="validation_error"):
        call("import_bundle", {"data": base64.b64encode(b"not a zip").decode(), "namespace": "x"})
    assert len(memcubed.Memcubed(mc.kernel, "bob").list_cubes(namespace="copied")) == 1
