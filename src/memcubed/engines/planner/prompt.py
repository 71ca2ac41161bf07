"""The planner's prompt: instructions and context, from the package's template files.

The kernel decides what a principal may see (events, memories, operations, budgets); this module only
renders it. Memories go in as :func:`~memcubed.engines.kvcache.memory.render_memory` blocks (quoted,
escaped, attributed), events as JSON lines of system fields only, so nothing a principal wrote reads as
an instruction. Templates are filled in one pass: a value that looks like a placeholder stays text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from memcubed.engines.kvcache.memory import MEMORY_NOTICE, CubeText, render_memory

__all__ = ["OperationSpec", "PlanContext", "compact_schema", "plan_messages", "template"]

_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


@cache
def template(name: str) -> str:
    """The text of the packaged prompt template ``name`` (``plan``, ``context``)."""
    return resources.files("memcubed.engines.planner").joinpath("prompts", f"{name}.md").read_text("utf-8")


def _fill(text: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True)
class OperationSpec:
    """An operation as the model is shown it.

    Attributes:
        name: the registry name.
        summary: its one-line description.
        schema: its input's JSON Schema.
    """

    name: str
    summary: str
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class PlanContext:
    """Everything a principal's planner prompt holds (already scoped to what the principal may see).

    Attributes:
        goal: what the principal asks for, if anything.
        budgets: the limits the plan must fit.
        operations: the operations the principal may plan.
        events: recent events, as flat JSON-able records of system fields.
        memories: the readable memories those events name.
        max_steps: the most steps a plan may have.
    """

    goal: str | None
    budgets: Mapping[str, Any]
    operations: Sequence[OperationSpec]
    events: Sequence[Mapping[str, Any]] = ()
    memories: Sequence[CubeText] = ()
    max_steps: int = 16


def _type(node: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> str:
    ref = node.get("$ref")
    if isinstance(ref, str):
        node = defs.get(ref.rsplit("/", 1)[-1], {})
    if node.get("properties"):  # an object, even one whose schema adds anyOf constraints (CubeUpdate)
        return _object(node, defs, depth) if depth > 0 else "object"
    if "enum" in node:
        return "|".join(json.dumps(v) for v in node["enum"])
    if "const" in node:
        return json.dumps(node["const"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            parts = [_type(n, defs, depth) for n in node[key] if n.get("type") != "null"]
            return "|".join(dict.fromkeys(parts)) or "null"
    kind = node.get("type")
    if kind == "array":
        return f"[{_type(node.get('items', {}), defs, depth)}]"
    if kind == "object" or "properties" in node:
        return _object(node, defs, depth) if depth > 0 and node.get("properties") else "object"
    return str(kind or "any")


def _object(node: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> str:
    required = set(node.get("required", []))
    fields = [f"{name}{'' if name in required else '?'}: {_type(sub, defs, depth - 1)}"
              for name, sub in node.get("properties", {}).items()]
    return "{" + ", ".join(fields) + "}"


def compact_schema(schema: Mapping[str, Any], *, depth: int = 2) -> str:
    """A one-line rendering of a JSON Schema object: ``{field: type, optional?: type}``, nested ``depth`` deep."""
    return _object(schema, schema.get("$defs", {}), depth)


def _events(events: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(json.dumps(dict(e), sort_keys=True, default=str) for e in events) or "(none)"


def plan_messages(context: PlanContext) -> list[dict[str, str]]:
    """The chat messages asking a model for a plan in ``context``: the instructions, then the context."""
    system = _fill(template("plan"), {"MAX_STEPS": str(context.max_steps), "MEMORY_NOTICE": MEMORY_NOTICE})
    operations = "\n".join(f"- {op.name}{compact_schema(op.schema)}: {op.summary}" for op in context.operations)
    user = _fill(template("context"), {
        "GOAL": context.goal.strip() if context.goal and context.goal.strip() else
        "(none given: propose what the recent events call for, or nothing)",
        "BUDGETS": json.dumps(dict(context.budgets), sort_keys=True, default=str),
        "OPERATIONS": operations or "(none)",
        "EVENTS": _events(context.events),
        "MEMORIES": "\n".join(render_memory(m) for m in context.memories) or "(none)",
    })
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
