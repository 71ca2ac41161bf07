"""Routes derived from the registry's ``http`` declarations: every one is served under its operation's name,
method, path and status, and the derived routes keep the rights, scopes and error mapping of the server (real
HTTP to the session's real ``memcubed serve`` process)."""

from __future__ import annotations

import inspect

import httpx
import pytest
from fastapi import params
from tests.interfaces.rest.conftest import Login

from memcubed.interfaces.rest.derive import derived_router, route_parameters
from memcubed.kernel.authorize import anyone
from memcubed.kernel.operation import Http, Operation, OperationRegistry
from memcubed.kernel.registry import OPERATIONS
from memcubed.schemas.operation import CubeRef, SetTrustInput, UpdateInput
from memcubed.testing.server import RunningServer

HAND_WRITTEN = {"list_cubes", "create_api_key", "list_api_keys", "export_bundle", "import_bundle"}
"""Operations whose routes are written by hand (interfaces/rest/routes): their HTTP shape is not their input's."""


def test_every_declared_route_is_served_as_declared(server: RunningServer) -> None:
    spec = httpx.get(f"{server.url}/openapi.json", timeout=120).json()
    served = {op["operationId"]: (method.upper(), path, [s for s in op["responses"] if s.startswith("2")])
              for path, methods in spec["paths"].items() for method, op in methods.items()}
    declared = {name: op.http for name, op in OPERATIONS.items() if op.http is not None}
    assert set(OPERATIONS) - set(declared) == HAND_WRITTEN
    for name, http in declared.items():
        assert served[name] == (http.method, http.path, [str(http.status)]), name


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/scheduler/run", {}), ("POST", "/scheduler/plan", {}), ("GET", "/audit/verify", None),
    ("POST", "/principals", {"name": "mallory-admin"}), ("POST", "/gc", {"dry_run": True}),
    ("GET", "/principals", None), ("PUT", "/principals/{me}/admin", {"is_admin": True}),
    ("POST", "/principals/{me}/disable", None), ("DELETE", "/principals/{other}", None),
])
def test_a_derived_admin_route_refuses_a_non_admin(admin: httpx.Client, login: Login, method: str, path: str,
                                                  body: dict[str, object] | None) -> None:
    mallory, other = login("mallory"), login("victim")
    url = path.format(me=mallory.principal, other=other.principal)  # type: ignore[attr-defined]
    response = mallory.request(method, url, json=body)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "access_denied"
    # Nothing changed: the victim still acts, mallory is no administrator, no principal was created.
    assert other.get("/me").status_code == 200
    assert mallory.get("/me").json()["is_admin"] is False
    assert admin.get("/principals/mallory-admin").status_code == 404


def test_an_admin_principals_write_key_cannot_run_a_derived_admin_route(server: RunningServer,
                                                                        admin: httpx.Client, login: Login) -> None:
    boss = login("boss", is_admin=True)
    issued = admin.post(f"/principals/{boss.principal}/keys", json={"scope": "write"}).json()  # type: ignore[attr-defined]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {issued['key']}"}, timeout=30) as key:
        for response in (key.post("/scheduler/run", json={}), key.get("/audit/verify"),
                         key.post("/principals", json={"name": "made-by-a-write-key"})):
            assert response.status_code == 403 and response.json()["error"]["details"]["scope"] == "write"
    assert boss.get("/audit/verify").status_code == 200  # the same principal with an admin key may
    assert admin.get("/principals/made-by-a-write-key").status_code == 404


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/cubes", {"text": "hello", "zz_unknown": 1}),
    ("POST", "/cubes/batch", [{"text": "hello", "zz_unknown": 1}]),
    ("PATCH", "/cubes/{cube}", {"text": "changed", "zz_unknown": 1}),
    ("POST", "/cubes/{cube}/share", {"principal": "{bob}", "right": "read", "zz_unknown": True}),
    ("POST", "/search", {"query": "hello", "zz_unknown": "admin"}),
])
def test_an_unknown_body_field_is_a_validation_error(login: Login, method: str, path: str, body: object) -> None:
    alice, bob = login("alice"), login("bob")
    cube = alice.post("/cubes", json={"text": "the original text"}).json()
    if isinstance(body, dict) and body.get("principal") == "{bob}":
        body = {**body, "principal": bob.principal}  # type: ignore[attr-defined]
    response = alice.request(method, path.format(cube=cube["id"]), json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert alice.get(f"/cubes/{cube['id']}").json()["version"] == 1  # a refused write changed nothing
    assert len(alice.get("/cubes").json()["items"]) == 1
    assert bob.get(f"/cubes/{cube['id']}").status_code in (403, 404)


def test_an_unknown_key_of_an_embedded_body_is_a_validation_error(admin: httpx.Client, login: Login) -> None:
    carol = login("carol")
    name = carol.principal  # type: ignore[attr-defined]
    for path, body in ((f"/principals/{name}/admin", {"is_admin": True, "zz_unknown": True}),
                       (f"/principals/{name}/trust", {"policy": "all", "zz_unknown": 1})):
        response = admin.put(path, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "validation_error"
        assert [e["field"] for e in response.json()["error"]["details"]["errors"]] == ["body.zz_unknown"]
    assert carol.get("/me").json()["is_admin"] is False  # the refused write changed nothing
    assert admin.put(f"/principals/{name}/admin", json={"is_admin": False}).status_code == 200
    assert admin.put(f"/principals/{name}/trust", json={"policy": "all"}).status_code == 200


def test_query_and_path_values_get_the_input_schema_checks(login: Login) -> None:
    alice = login("alice")
    cube = alice.post("/cubes", json={"text": "paged"}).json()
    for url in (f"/cubes/{cube['id']}/history?limit=0", f"/cubes/{cube['id']}/history?offset=-1",
                "/audit?after_seq=-1", "/jobs?state=exploded", "/principals/bad%20name", "/working-set?namespace=%00",
                "/cubes/not-a-cube-id/history", "/scheduler/log?action=forget"):
        response = alice.get(url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["error"]["code"] == "validation_error"
    page = alice.get(f"/cubes/{cube['id']}/history?limit=1").json()
    assert [e["version"] for e in page["items"]] == [1] and page["next"] == 1
    assert alice.get("/scheduler/log?action=working_set").status_code == 200  # the input schema allows it


def test_a_new_operation_declaring_http_gets_its_route() -> None:
    """What the lead does to convert a hand-written route: declare ``http``; the factory does the rest."""
    op = Operation("archive_too", CubeRef, dict, anyone, lambda k, i, p: {"id": i.cube_id}, "archive", ("x",),
                   "Archive another way.", http=Http("POST", "/cubes/{cube_id}/archive-too", 202))
    (route,) = derived_router(OperationRegistry([op])).routes
    assert (route.path, route.methods, route.operation_id, route.status_code, route.name) == (  # type: ignore[attr-defined]
        "/cubes/{cube_id}/archive-too", {"POST"}, "archive_too", 202, "archive_too")
    assert [p.name for p in route_parameters(op, op.http)] == ["cube_id"]  # type: ignore[arg-type]


def test_a_declaration_naming_a_missing_field_is_refused() -> None:
    op = Operation("broken", CubeRef, dict, anyone, lambda k, i, p: {}, None, ("x",), "Broken.",
                   http=Http("GET", "/cubes/{id}"))
    with pytest.raises(ValueError, match="lacks"):
        derived_router(OperationRegistry([op]))


@pytest.mark.parametrize(("input_", "http", "expected"), [
    (UpdateInput, Http("PATCH", "/cubes/{cube_id}", body="change"), [("cube_id", "path"), ("body", "body")]),
    (SetTrustInput, Http("PUT", "/principals/{name}/trust", body="*"), [("name", "path"), ("body", "body")]),
    (CubeRef, Http("GET", "/c"), [("cube_id", "query")]),
])
def test_where_each_field_comes_from(input_: type, http: Http, expected: list[tuple[str, str]]) -> None:
    op = Operation("x", input_, dict, anyone, lambda k, i, p: {}, None, ("x",), "X.", http=http)

    def where(param: inspect.Parameter) -> str:
        marker = [a for a in getattr(param.annotation, "__metadata__", ()) if isinstance(a, params.Param | params.Body)]
        if not marker:
            return "body"  # a model parameter: FastAPI reads it from the body
        if isinstance(marker[-1], params.Body):
            return "embed" if marker[-1].embed else "body"
        return "path" if isinstance(marker[-1], params.Path) else "query"

    found = route_parameters(op, http)
    assert [(p.name, where(p)) for p in found] == expected
    body = [p.annotation for p in found if p.name == "body" and isinstance(p.annotation, type)]
    if http.body == "*" and body:  # the fields the path leaves, refusing any other key as a whole input does
        assert body[0].model_json_schema()["additionalProperties"] is False
