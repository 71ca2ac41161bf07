"""Operations as data: the :class:`Operation` record and the :class:`OperationRegistry` that validates calls.

Each :class:`Operation` has a name (the same in the Python API, the CLI, REST ``operation_id``\\ s and MCP
tools), one pydantic input schema, an **authorize** step that checks rights and model ids while writing
nothing, an **execute** step that calls the kernel, the name its audit records carry, and whether it may
run as a background job. The operations themselves are declared once, in :mod:`memcubed.kernel.registry`.

Authorize is a pre-check: the kernel method still checks everything itself when it executes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from memcubed.errors import ValidationError
from memcubed.kernel.kernel import Kernel
from memcubed.kernel.validation import parse
from memcubed.schemas.ops import PrincipalPublic

__all__ = ["Authorize", "Cli", "Execute", "Http", "Operation", "OperationRegistry"]

Authorize = Callable[[Kernel, Any, PrincipalPublic], object]
Execute = Callable[[Kernel, Any, str], Any]


@dataclass(frozen=True)
class Http:
    """How an operation is served over REST; :mod:`memcubed.interfaces.rest.derive` builds its route.

    Each ``{field}`` of ``path`` is the input field of that name. ``body`` says where the others come from:
    ``None``, the query string (one parameter per field); ``"*"``, the request body (the input schema itself, or,
    when the path names fields, one embedded body field per remaining field); a field's name, the body is that
    field's value (any other fields come from the query string).

    Attributes:
        method: the HTTP method.
        path: the route's path.
        status: the status of a success.
        tag: the OpenAPI tag it is listed under.
        body: where the fields not in the path come from (above).
        page: a list output answered as a ``Page``: ``"offset"`` (``next`` is the next offset) or ``"seq"``
            (``next`` is the last item's ``seq``).
        submit: queue the operation as a background job and answer its job record (a job operation).
        doc: the route's description, when it says more than the operation's summary.
    """

    method: str
    path: str
    status: int = 200
    tag: str = "memory"
    body: str | None = None
    page: str | None = None
    submit: bool = False
    doc: str | None = None


@dataclass(frozen=True)
class Cli:
    """How an operation is a CLI command; :mod:`memcubed.interfaces.cli.derive` builds it from the input schema.

    Every input field is a parameter of the command: a field in ``expand`` (a model) contributes its own fields
    instead, named with the prefix given there. A parameter is ``--field-name`` (a list: the singular,
    repeatable, ``--tag`` for ``tags``) unless ``flags`` names it otherwise; a structured value (a mapping, a
    list of models) is given as JSON. Help is the field's description. Operations that declare the same
    command words share one command (``get`` and ``get_version``): the first runs unless the ``when``
    parameter of another is given.

    Attributes:
        args: the parameters taken as positional arguments, in order.
        flags: option declarations where they differ from the derived one, by parameter name.
        names: a parameter's name where it differs from its field's (an argument's metavar).
        expand: model-valued fields whose own fields become parameters, each with its name prefix.
        defaults: defaults on the command line that differ from the schema's, by parameter name.
        show: for people, the function of :mod:`memcubed.interfaces.cli.render` that prints the result.
        line: else a one-line summary: a format string of ``out`` (the result) and the parameters given
            (their defaults otherwise); neither: JSON, as with ``--json``.
        result: the attribute of the output that is shown (None: the output itself).
        when: the parameter whose presence selects this operation over the command's first.
    """

    args: tuple[str, ...] = ()
    flags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)
    expand: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, object] = field(default_factory=dict)
    show: str | None = None
    line: str | None = None
    result: str | None = None
    when: str | None = None


@dataclass(frozen=True)
class Operation:
    """One kernel operation, as every interface sees it.

    Attributes:
        name: the operation's one name (Python method, REST operation_id, MCP tool, job kind).
        input: its one input schema.
        output: the type it returns.
        authorize: raises what executing would for missing rights or an unknown model; writes nothing.
        execute: runs it: (kernel, validated input, principal) → output.
        audit: the ``op`` of the audit records it writes (None: it writes none).
        job: whether it may run as a background job (its input is then the job's params).
        cli: the CLI command that runs it (words of the command line).
        summary: one line for tool and route descriptions.
        admin: it administers the store (principals, keys, the whole audit log): needs an ``admin``-scoped key.
        http: its REST route, when one is derived (None: none, or one written by hand).
        command: how its CLI command is derived (None: the command at ``cli`` is written by hand).
    """

    name: str
    input: type[BaseModel]
    output: Any
    authorize: Authorize
    execute: Execute
    audit: str | None
    cli: tuple[str, ...]
    summary: str
    job: bool = False
    admin: bool = False
    http: Http | None = None
    command: Cli | None = None

    @property
    def scope(self) -> str:
        """The key scope it needs: ``admin`` to administer, ``write`` when it writes (it has an audit
        name), ``read`` otherwise."""
        return "admin" if self.admin else "write" if self.audit is not None else "read"


class OperationRegistry(Mapping[str, Operation]):
    """The operations by name, with validation that runs schema and authorization without writing."""

    def __init__(self, operations: list[Operation]) -> None:
        self._ops = {op.name: op for op in operations}
        if len(self._ops) != len(operations):
            raise ValueError("operation names must be unique")

    def __getitem__(self, name: str) -> Operation:
        return self._ops[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ops)

    def __len__(self) -> int:
        return len(self._ops)

    def jobs(self) -> list[str]:
        """The names of the operations that may run as background jobs."""
        return [name for name, op in self._ops.items() if op.job]

    def validate(self, kernel: Kernel, name: str, payload: BaseModel | Mapping[str, Any],
                 principal: str) -> BaseModel:
        """Check that ``principal`` could run ``name`` with ``payload``, writing nothing; return the input.

        Raises:
            ValidationError: unknown operation, bad input, or an unknown model id.
            UnknownPrincipal / AccessDenied / NotFound / Conflict: what executing would raise for rights.
        """
        op = self._ops.get(name) if isinstance(name, str) else None
        if op is None:
            raise ValidationError(f"unknown operation; known: {', '.join(sorted(self._ops))}", field="op")
        with kernel._denials(principal, op.name):
            actor = kernel._actor(principal)
            data = payload if isinstance(payload, op.input) else parse(
                op.input, payload.model_dump(exclude_unset=True) if isinstance(payload, BaseModel) else dict(payload))
            op.authorize(kernel, data, actor)
        return data

    def run(self, kernel: Kernel, name: str, payload: BaseModel | Mapping[str, Any], principal: str) -> Any:
        """Validate ``payload`` for ``name`` as ``principal``, then execute it.

        Raises:
            MemcubedError: whatever validation or the operation raises.
        """
        with kernel._denials(principal, name if isinstance(name, str) else "?"):
            data = self.validate(kernel, name, payload, principal)
            return self._ops[name].execute(kernel, data, principal)
