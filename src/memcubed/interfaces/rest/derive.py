"""REST routes derived from the registry: one route for every operation that declares ``http``.

An operation's :class:`~memcubed.kernel.operation.Http` names its method, path, success status and where its
input's fields come from; :func:`derived_router` turns each into a FastAPI route whose parameters are the
input schema's own fields (their types and constraints), whose operation id and name are the operation's,
and whose endpoint runs the operation's execute step. Adding an operation with ``http`` adds its route.
"""

from __future__ import annotations

import functools
import inspect
import operator
import re
import types
import typing
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from memcubed.errors import ValidationError
from memcubed.interfaces.rest.auth import Caller, KernelDep
from memcubed.interfaces.rest.errors import ERROR_RESPONSES
from memcubed.kernel.operation import Http, Operation, OperationRegistry
from memcubed.kernel.validation import parse
from memcubed.schemas.jobs import JobRecord
from memcubed.schemas.server import Page

__all__ = ["derived_router", "route_parameters"]

_KW = inspect.Parameter.KEYWORD_ONLY


def derived_router(operations: OperationRegistry) -> APIRouter:
    """A router with the route of every operation in ``operations`` that declares ``http``, in their order."""
    router = APIRouter(responses=ERROR_RESPONSES)
    for op in operations.values():
        if op.http is not None:
            _add(router, op, op.http)
    return router


def route_parameters(op: Operation, http: Http) -> list[inspect.Parameter]:
    """The endpoint parameters of ``op``'s route: path fields, then the body or query fields, in field order.

    Raises:
        ValueError: the declaration names a field the input does not have.
    """
    fields = op.input.model_fields
    in_path = re.findall(r"{(\w+)}", http.path)
    unknown = [n for n in [*in_path, *([http.body] if http.body not in (None, "*") else [])] if n not in fields]
    if unknown:
        raise ValueError(f"{op.name}: its http declaration names fields its input lacks: {unknown}")
    params = [_param(name, fields[name], Path) for name in in_path]
    rest = [name for name in fields if name not in in_path]
    if http.body == "*" and not in_path:
        return [inspect.Parameter("body", _KW, annotation=op.input)]
    if http.body == "*":
        return params + [_param(name, fields[name], Body, embed=True) for name in rest]
    if http.body is not None:  # named "body", as FastAPI titles the body's schema after its parameter
        params.append(_param("body", fields[http.body], Body))
    return params + [_param(name, fields[name], Query) for name in rest if name != http.body]


def _param(name: str, field: FieldInfo, where: Any, *, embed: bool = False) -> inspect.Parameter:
    """One endpoint parameter with the field's type and constraints, from the path, the query or the body."""
    base: Any = field.annotation
    if where is Path and typing.get_origin(base) in (typing.Union, types.UnionType):
        base = functools.reduce(operator.or_, [a for a in typing.get_args(base) if a is not type(None)])  # never None
    kind: Any = typing.Annotated[(base, *field.metadata)] if field.metadata else base
    if where is Body and not embed and isinstance(base, type) and issubclass(base, BaseModel):
        annotation = kind  # a model is the body as it is (FastAPI's default for a model parameter)
    else:
        marker = Body(embed=True, description=field.description) if embed else where(description=field.description)
        annotation = Annotated[kind, marker]
    default = inspect.Parameter.empty if where is Path or field.is_required() else field.get_default(
        call_default_factory=True)
    return inspect.Parameter(name, _KW, annotation=annotation, default=default)


def _add(router: APIRouter, op: Operation, http: Http) -> None:
    params = route_parameters(op, http)
    whole = len(params) == 1 and params[0].name == "body" and params[0].annotation is op.input
    paged: Any = Page
    output: Any = JobRecord if http.submit else paged[typing.get_args(op.output)[0]] if http.page else op.output

    def endpoint(kernel: KernelDep, caller: Caller, **values: Any) -> Any:
        if http.body not in (None, "*"):
            values[http.body] = values.pop("body")
        data = values["body"] if whole else parse(op.input, values)
        if http.submit:
            return kernel.submit_job({"kind": op.name, "params": data.model_dump()}, principal=caller)
        result = op.execute(kernel, data, caller)
        if http.page is None:
            return result
        limit: int = getattr(data, "limit")  # noqa: B009 (a paged input has limit, and offset unless by seq)
        after = (result[-1].seq if http.page == "seq" else getattr(data, "offset") + limit  # noqa: B009
                 ) if len(result) == limit else None
        return Page(items=result, next=after)

    endpoint.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        *params, inspect.Parameter("kernel", _KW, annotation=KernelDep), inspect.Parameter("caller", _KW,
                                                                                          annotation=Caller)])
    endpoint.__name__ = op.name
    embedded = http.body == "*" and not whole
    router.add_api_route(http.path, endpoint, methods=[http.method], status_code=http.status, name=op.name,
                         operation_id=op.name, tags=[http.tag], response_model=output,
                         description=inspect.cleandoc(http.doc or op.summary),
                         dependencies=[Depends(_only_fields({p.name for p in params} - set(
                             re.findall(r"{(\w+)}", http.path))))] if embedded else None)


def _only_fields(allowed: set[str]) -> Any:
    """A dependency refusing body keys outside ``allowed``: FastAPI ignores unknown keys of an embedded
    body, where a whole-model body (``extra="forbid"``) refuses them."""

    async def check(request: Request) -> None:
        if not await request.body():
            return
        body = await request.json()
        unknown = sorted(set(body) - allowed) if isinstance(body, dict) else []
        if unknown:
            raise ValidationError(f"unknown body field(s): {', '.join(map(str, unknown))}", fields=unknown)

    return check
