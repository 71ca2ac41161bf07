"""CLI commands derived from the registry: one command for every operation that declares ``command``.

An operation's :class:`~memcubed.kernel.operation.Cli` says which input fields are positional, which option
names differ from the derived ones and how the result is shown; :func:`add_commands` turns it into a Typer
command whose parameters are the input schema's own fields (their help is the field's description), and
whose body validates the values with that schema and runs the operation's execute step as the acting
principal, as REST's derived routes do. Values reach the schema as typed Python values (a number, an aware
datetime; a naive one is read as UTC), so a bad one is the schema's ``ValidationError`` (exit code 65), and
a failed command writes nothing.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, IntEnum
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from memcubed.errors import ValidationError
from memcubed.interfaces.cli import render
from memcubed.interfaces.cli.state import handle_errors, state
from memcubed.kernel.operation import Cli, Operation, OperationRegistry
from memcubed.kernel.validation import parse

__all__ = ["Param", "add_commands", "command_params"]

_KW = inspect.Parameter.KEYWORD_ONLY
_SCALARS = (str, int, float, bool, datetime)


@dataclass(frozen=True)
class Param:
    """One parameter of a derived command: the input field it fills and how it is given.

    Attributes:
        name: its Python name (an argument's metavar, upper-cased).
        path: the field it fills: a field of the input, or of a model field in ``expand``.
        field: that field's declaration.
        argument: given positionally (else an option).
        decls: its option declarations (none for an argument).
    """

    name: str
    path: tuple[str, ...]
    field: FieldInfo
    argument: bool
    decls: tuple[str, ...]

    @property
    def kind(self) -> Any:
        """The field's type without ``None`` and ``Annotated``."""
        return _bare(self.field.annotation)

    @property
    def label(self) -> str:
        """How an error names it: its first option, or an argument's metavar."""
        return self.decls[0] if self.decls else self.name.upper()

    @property
    def many(self) -> bool:
        """A repeatable option (a list of scalars)."""
        return typing.get_origin(self.kind) is list and _scalar(_bare(typing.get_args(self.kind)[0]))


def command_params(op: Operation) -> list[Param]:
    """The parameters of ``op``'s command, arguments first (in ``args`` order), then options in field order.

    Raises:
        ValueError: the declaration names a parameter or field the input does not have.
    """
    cli = _declared(op)
    leaves: list[tuple[str, tuple[str, ...], FieldInfo]] = []
    for name, info in op.input.model_fields.items():
        if name in cli.expand:
            inner = _bare(info.annotation)
            if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
                raise ValueError(f"{op.name}: expand names {name!r}, which is no model")
            leaves += [(f"{cli.expand[name]}{sub}", (name, sub), sub_info)
                       for sub, sub_info in inner.model_fields.items()]
        else:
            leaves.append((name, (name,), info))
    found = [_param(cli, *leaf) for leaf in leaves]
    names = {p.name for p in found}
    unknown = {*cli.args, *cli.flags, *cli.defaults, *([cli.when] if cli.when else [])} - names
    unknown |= set(cli.names) - {leaf[0] for leaf in leaves}
    if unknown or not set(cli.expand) <= set(op.input.model_fields):
        raise ValueError(f"{op.name}: its cli declaration names parameters its input lacks: {sorted(unknown)}")
    return sorted(found, key=lambda p: cli.args.index(p.name) if p.argument else len(cli.args))


def add_commands(app: typer.Typer, operations: OperationRegistry, groups: Mapping[str, typer.Typer]) -> None:
    """Add the command of every operation in ``operations`` that declares ``command``, in order: to ``app``, or
    for two command words to the group named by the first; operations with the same words share one command.

    Raises:
        ValueError: an operation's command words name no group, or are more than two.
    """
    commands: dict[tuple[str, ...], list[Operation]] = {}
    for op in operations.values():
        if op.command is not None:
            commands.setdefault(op.cli, []).append(op)
    for words, ops in commands.items():
        if len(words) > 2 or (len(words) == 2 and words[0] not in groups):
            raise ValueError(f"{ops[0].name}: no command group for {' '.join(words)!r}")
        parent = groups[words[0]] if len(words) == 2 else app
        parent.command(words[-1], help=ops[0].summary)(_command(ops))


def _declared(op: Operation) -> Cli:
    if op.command is None:
        raise ValueError(f"{op.name} declares no cli command")
    return op.command


def _param(cli: Cli, name: str, path: tuple[str, ...], info: FieldInfo) -> Param:
    name = cli.names.get(name, name)
    if name in cli.args:
        return Param(name, path, info, True, ())
    many = Param(name, path, info, False, ()).many
    default = "--" + (name[:-1] if many and name.endswith("s") else name).replace("_", "-")
    return Param(name, path, info, False, cli.flags.get(name, (default,)))


def _command(ops: list[Operation]) -> Callable[..., None]:
    """The command running ``ops[0]``, or the op whose ``when`` parameter is given."""
    params = {op.name: command_params(op) for op in ops}
    merged: dict[str, Param] = {}
    for op in ops:
        for p in params[op.name]:
            merged.setdefault(p.name, p)
    required = {name for name in merged if all(
        any(p.name == name and p.field.is_required() for p in params[op.name]) for op in ops)}

    def command(ctx: typer.Context, **raw: Any) -> None:
        given = {name: value for name, value in raw.items() if value not in (None, [], ())}
        op = next((o for o in ops[1:] if _declared(o).when in given), ops[0])
        cli, mine = _declared(op), {p.name: p for p in params[op.name]}
        stray = sorted(set(given) - set(mine))
        if stray:
            with_ = f"with {merged[cli.when].label}" if cli.when else "here"
            raise ValidationError(f"{', '.join(merged[n].label for n in stray)} cannot be used {with_}",
                                  field=stray[0])
        values: dict[str, Any] = {name: {} for name in cli.expand}  # the model's own check sees an empty one
        for name, p in mine.items():
            if name in given or name in cli.defaults:
                value = _value(p, given[name]) if name in given else cli.defaults[name]
                target = values
                for key in p.path[:-1]:
                    target = target.setdefault(key, {})
                target[p.path[-1]] = value
        client = state(ctx).client()
        result = op.execute(client.kernel, parse(op.input, values), client.principal)
        _show(state(ctx).json, cli, result if cli.result is None else getattr(result, cli.result),
              {name: given.get(name, _default(p, cli)) for name, p in mine.items()})

    command.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("ctx", _KW, annotation=typer.Context),
        *(_typer_param(p, p.name in required, _declared(ops[0])) for p in merged.values())])
    command.__name__ = ops[0].name
    return handle_errors(command)


def _typer_param(p: Param, required: bool, cli: Cli) -> inspect.Parameter:
    """The Typer parameter of ``p``: raw text (or a flag), converted by :func:`_value` and checked by the schema."""
    if p.argument:
        argument = typer.Argument(help=_help(p), show_default=False)
        if required:
            return inspect.Parameter(p.name, _KW, annotation=Annotated[str, argument])
        return inspect.Parameter(p.name, _KW, annotation=Annotated[str | None, argument], default=None)
    kind: Any = bool | None if p.kind is bool else list[str] | None if p.many else str | None
    shown = _default(p, cli)  # in the help, not as Typer's default: an option not given is a field not set
    option = typer.Option(*p.decls, help=_help(p) + ("" if shown is None else f" \\[default: {shown}]"),
                          metavar=None if p.kind is bool else _metavar(p), show_default=False)
    return inspect.Parameter(p.name, _KW, annotation=Annotated[kind, option], default=None)


def _default(p: Param, cli: Cli) -> Any:
    """The default shown for ``p`` (the command line's, else the schema's; None when it has none to show)."""
    if p.name in cli.defaults:
        return cli.defaults[p.name]
    value = None if p.field.is_required() else p.field.get_default(call_default_factory=True)
    if isinstance(value, list):
        return ", ".join(_choice(v) if isinstance(v, Enum) else str(v) for v in value) or None
    if isinstance(value, Enum):
        return _choice(value)
    return None if value in (None, {}) or p.kind is bool else value


def _help(p: Param) -> str:
    """The field's description (the metavar shows an enum's choices, or that a value is JSON)."""
    return (p.field.description or p.name.replace("_", " ")) + (" (repeatable)" if p.many else "")


def _metavar(p: Param) -> str:
    kind = _bare(typing.get_args(p.kind)[0]) if p.many else p.kind
    if isinstance(kind, type) and issubclass(kind, Enum):
        return "[" + "|".join(_choice(m) for m in kind) + "]"
    if typing.get_origin(kind) is typing.Literal:
        return "[" + "|".join(str(v) for v in typing.get_args(kind)) + "]"
    names = {int: "<int>", float: "<float>", datetime: "<datetime>", str: "<str>"}
    return names.get(kind, "<json>") if isinstance(kind, type) and _scalar(kind) else "<json>"


def _choice(member: Enum) -> str:
    return member.name.lower() if isinstance(member, IntEnum) else str(member.value)


def _value(p: Param, raw: Any) -> Any:
    """``raw`` as the Python value the schema takes (a list item by item).

    Raises:
        ValidationError: a number, datetime or JSON value that does not parse, naming the parameter.
    """
    if p.many:
        kind = _bare(typing.get_args(p.kind)[0])
        return [_scalar_value(p, kind, item) for item in raw]
    return _scalar_value(p, p.kind, raw)


def _scalar_value(p: Param, kind: Any, raw: Any) -> Any:
    try:
        if kind is int or kind is float:
            return kind(raw)
        if kind is datetime:
            moment = datetime.fromisoformat(raw)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if isinstance(raw, str) and not _scalar(kind):
            return json.loads(raw)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        expected = {int: "an integer", float: "a number", datetime: "an ISO 8601 datetime"}.get(kind, "JSON")
        raise ValidationError(f"{p.label} must be {expected}", field=".".join(p.path)) from exc
    return raw


def _show(as_json: bool, cli: Cli, out: Any, values: dict[str, Any]) -> None:
    if as_json or (cli.show is None and cli.line is None):
        render.emit(out)
    elif cli.show is not None:
        getattr(render, cli.show)(out)
    else:
        print(typing.cast(str, cli.line).format(out=out, **values))


def _bare(annotation: Any) -> Any:
    """``annotation`` without ``Annotated`` and ``None``."""
    if typing.get_origin(annotation) is Annotated:
        return _bare(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _bare(rest[0]) if len(rest) == 1 else annotation
    return annotation


def _scalar(kind: Any) -> bool:
    """A value given as one word: a string, number, flag, datetime or one of an enum's or literal's choices."""
    if typing.get_origin(kind) is typing.Literal:
        return all(isinstance(v, str | int) for v in typing.get_args(kind))
    return isinstance(kind, type) and (issubclass(kind, _SCALARS) or issubclass(kind, Enum))
