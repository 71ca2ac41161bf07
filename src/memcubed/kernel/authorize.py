"""The authorize steps of the operations in :mod:`memcubed.kernel.registry`: each reads, and never writes.

Each raises what executing its operation would raise first for missing rights, an unknown model or a bad
job kind, so that a planner (or any caller of ``Kernel.validate_call``) learns it before anything runs.
"""

from __future__ import annotations

from typing import Any

from memcubed.cube.model import CubeKind, Right
from memcubed.errors import AccessDenied, ValidationError
from memcubed.kernel.kernel import Kernel
from memcubed.kernel.operation import Authorize
from memcubed.kernel.validation import parse
from memcubed.schemas.jobs import JobSubmit
from memcubed.schemas.operation import (
    AdapterGenerateInput,
    AuditInput,
    ChatInput,
    GenerateInput,
    GetInput,
    RecompileInput,
)
from memcubed.schemas.ops import (
    CubeCreate,
    PrincipalPublic,
)
from memcubed.schemas.workset import WorkingSetInput

__all__ = [
    "admin_only",
    "anyone",
    "can_audit",
    "can_generate",
    "can_get",
    "can_recompile",
    "can_set_working_set",
    "can_submit",
    "can_use_adapters",
    "job_check",
    "on_cube",
    "self_or_admin",
    "sources_readable",
]


def anyone(kernel: Kernel, inp: Any, actor: PrincipalPublic) -> None:
    """Any registered, enabled principal (checked by ``validate``); rights apply inside the operation."""


def admin_only(kernel: Kernel, inp: Any, actor: PrincipalPublic) -> None:
    if not actor.is_admin:
        raise AccessDenied("only administrators may do this", principal=actor.name)


def on_cube(right: Right, *, deleted: bool = False) -> Authorize:
    def check(kernel: Kernel, inp: Any, actor: PrincipalPublic) -> None:
        kernel._load(inp.cube_id, actor, right, include_deleted=deleted)
    return check


def sources_readable(items: list[CubeCreate], kernel: Kernel, actor: PrincipalPublic) -> None:
    kernel._check_derivations(items, actor)


def can_get(kernel: Kernel, inp: GetInput, actor: PrincipalPublic) -> None:
    kernel._load(inp.cube_id, actor, Right.READ, include_deleted=inp.include_deleted or inp.as_of is not None)


def job_check(kind: str) -> Authorize:
    def check(kernel: Kernel, inp: Any, actor: PrincipalPublic) -> None:
        kernel.job_kinds()[kind].check(inp, actor)
    return check


def can_recompile(kernel: Kernel, inp: RecompileInput, actor: PrincipalPublic) -> None:
    kernel.models.check(inp.model, open_model=True)
    if kernel._load(inp.cube_id, actor, Right.WRITE).kind is CubeKind.PLAINTEXT:
        raise ValidationError(f"cube {inp.cube_id} is plaintext: only derived cubes are recompiled", id=inp.cube_id)


def can_generate(kernel: Kernel, inp: GenerateInput | ChatInput, actor: PrincipalPublic) -> None:
    kernel.models.check(inp.model)
    if inp.activation_id is not None:
        kernel._activation(inp.activation_id, actor)


def can_use_adapters(kernel: Kernel, inp: AdapterGenerateInput, actor: PrincipalPublic) -> None:
    kernel.models.check(inp.model, open_model=True)
    for cube_id in inp.parameter_ids:
        kernel._require_sources(kernel._parameter(cube_id, actor, Right.READ), actor)


def can_audit(kernel: Kernel, inp: AuditInput, actor: PrincipalPublic) -> None:
    if inp.cube_id is not None:
        kernel._load(inp.cube_id, actor, Right.READ, include_deleted=True)
    else:
        admin_only(kernel, inp, actor)


def self_or_admin(field: str) -> Authorize:
    def check(kernel: Kernel, inp: Any, actor: PrincipalPublic) -> None:
        if getattr(inp, field) not in (None, actor.name):
            admin_only(kernel, inp, actor)
    return check


def can_submit(kernel: Kernel, inp: JobSubmit, actor: PrincipalPublic) -> None:
    kind = kernel.job_kinds().get(inp.kind)
    if kind is None:
        raise ValidationError(f"unknown job kind {inp.kind!r}; known: {sorted(kernel.job_kinds())}", field="kind")
    kind.check(parse(kind.params, inp.params), actor)


def can_set_working_set(kernel: Kernel, inp: WorkingSetInput, actor: PrincipalPublic) -> None:
    kernel.models.check(inp.model)
    if inp.cube_ids is not None:
        kernel._working_set_sources(inp.cube_ids, inp.namespace, actor)
