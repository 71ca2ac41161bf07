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

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, ConfigDict, create_model
from pydantic.fields import FieldInfo

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
    if http.body == "*":  # the body is the fields the path leaves, and like a whole input it refuses others
        definitions: dict[str, Any] = {name: (fields[name].annotation, fields[name]) for name in rest}
        body = create_model(f"{op.input.__name__}Body", __config__=ConfigDict(extra="forbid"), **definitions)
        return [*params, inspect.Parameter("body", _KW, annotation=body)]
    if http.body is not None:  # named "body", as FastAPI titles the body's schema after its parameter
        params.append(_param("body", fields[http.body], Body))
    return params + [_param(name, fields[name], Query) for name in rest if name != http.body]


def _param(name: str, field: FieldInfo, where: Any) -> inspect.Parameter:
    """One endpoint parameter with the field's type and constraints, from the path, the query or the body."""
    base: Any = field.annotation
    if where is Path and typing.get_origin(base) in (typing.Union, types.UnionType):
        base = functools.reduce(operator.or_, [a for a in typing.get_args(base) if a is not type(None)])  # never None
    kind: Any = typing.Annotated[(base, *field.metadata)] if field.metadata else base
    if where is Body and isinstance(base, type) and issubclass(base, BaseModel):
        annotation = kind  # a model is the body as it is (FastAPI's default for a model parameter)
    else:
        marker = where(description=field.description)
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
        elif http.body == "*" and not whole:
            values.update(dict(values.pop("body")))
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
    router.add_api_route(http.path, endpoint, methods=[http.method], status_code=http.status, name=op.name,
                         operation_id=op.name, tags=[http.tag], response_model=output,
                         description=inspect.cleandoc(http.doc or op.summary))
