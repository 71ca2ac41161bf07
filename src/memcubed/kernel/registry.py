"""Operations as data: every kernel operation declared once, with its one input schema.

Each :class:`Operation` has a name (the same in the Python API, the CLI, REST ``operation_id``\\ s and MCP
tools), one pydantic input schema, an **authorize** step that checks rights and model ids while writing
nothing, an **execute** step that calls the kernel, the name its audit records carry, and whether it may
run as a background job. Interfaces are generated from :data:`OPERATIONS` or checked against it (a parity
test), and a planner validates proposed calls with :meth:`OperationRegistry.validate` before anything runs.

Authorize is a pre-check: the kernel method still checks everything itself when it executes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from memcubed.cube.model import CubeKind, MemCube, Right
from memcubed.errors import AccessDenied, ValidationError
from memcubed.kernel.kernel import Kernel
from memcubed.kernel.validation import parse
from memcubed.schemas.chat import ChatRequest, ChatResult, GenerationResult
from memcubed.schemas.jobs import CacheJob, ConsolidateJob, JobRecord, JobSubmit
from memcubed.schemas.operation import (
    AdapterGenerateInput,
    AddManyInput,
    ApiKeyCreateInput,
    ApiKeyRef,
    AuditInput,
    ChatInput,
    CubeRef,
    DeleteInput,
    GenerateInput,
    GetInput,
    HistoryInput,
    JobRef,
    ListApiKeysInput,
    ListCubesInput,
    ListJobsInput,
    NoInput,
    PageInput,
    PrincipalRef,
    RecompileInput,
    RevokeInput,
    SetAdminInput,
    SetTrustInput,
    ShareInput,
    UpdateInput,
    VersionRef,
)
from memcubed.schemas.ops import (
    AuditRecord,
    AuditReport,
    CubeCreate,
    HistoryEntry,
    PrincipalCreate,
    PrincipalPublic,
    SearchRequest,
    SearchResult,
)
from memcubed.schemas.remember import ExtractInput, RememberInput, RememberResult
from memcubed.schemas.server import ApiKeyIssued, ApiKeyPublic

__all__ = ["OPERATIONS", "Operation", "OperationRegistry"]

Authorize = Callable[[Kernel, Any, PrincipalPublic], object]
Execute = Callable[[Kernel, Any, str], Any]


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


# -- authorize steps (they read, never write) --------------------------------------------------------------

def _anyone(kernel: Kernel, inp: Any, actor: PrincipalPublic) -> None:
    """Any registered, enabled principal (checked by ``validate``); rights apply inside the operation."""


def _admin(kernel: Kernel, inp: Any, actor: PrincipalPublic) -> None:
    if not actor.is_admin:
        raise AccessDenied("only administrators may do this", principal=actor.name)


def _on_cube(right: Right, *, deleted: bool = False) -> Authorize:
    def check(kernel: Kernel, inp: Any, actor: PrincipalPublic) -> None:
        kernel._load(inp.cube_id, actor, right, include_deleted=deleted)
    return check


def _sources_readable(items: list[CubeCreate], kernel: Kernel, actor: PrincipalPublic) -> None:
    kernel._check_derivations(items, actor)


def _get(kernel: Kernel, inp: GetInput, actor: PrincipalPublic) -> None:
    kernel._load(inp.cube_id, actor, Right.READ, include_deleted=inp.include_deleted or inp.as_of is not None)


def _job_kind(kind: str) -> Authorize:
    def check(kernel: Kernel, inp: Any, actor: PrincipalPublic) -> None:
        kernel.job_kinds()[kind].check(inp, actor)
    return check


def _recompile(kernel: Kernel, inp: RecompileInput, actor: PrincipalPublic) -> None:
    kernel.models.check(inp.model, open_model=True)
    if kernel._load(inp.cube_id, actor, Right.WRITE).kind is CubeKind.PLAINTEXT:
        raise ValidationError(f"cube {inp.cube_id} is plaintext: only derived cubes are recompiled", id=inp.cube_id)


def _generate(kernel: Kernel, inp: GenerateInput | ChatInput, actor: PrincipalPublic) -> None:
    kernel.models.check(inp.model)
    if inp.activation_id is not None:
        kernel._activation(inp.activation_id, actor)


def _adapters(kernel: Kernel, inp: AdapterGenerateInput, actor: PrincipalPublic) -> None:
    kernel.models.check(inp.model, open_model=True)
    for cube_id in inp.parameter_ids:
        kernel._require_sources(kernel._parameter(cube_id, actor, Right.READ), actor)


def _audit(kernel: Kernel, inp: AuditInput, actor: PrincipalPublic) -> None:
    if inp.cube_id is not None:
        kernel._load(inp.cube_id, actor, Right.READ, include_deleted=True)
    else:
        _admin(kernel, inp, actor)


def _self_or_admin(field: str) -> Authorize:
    def check(kernel: Kernel, inp: Any, actor: PrincipalPublic) -> None:
        if getattr(inp, field) not in (None, actor.name):
            _admin(kernel, inp, actor)
    return check


def _submit(kernel: Kernel, inp: JobSubmit, actor: PrincipalPublic) -> None:
    kind = kernel.job_kinds().get(inp.kind)
    if kind is None:
        raise ValidationError(f"unknown job kind {inp.kind!r}; known: {sorted(kernel.job_kinds())}", field="kind")
    kind.check(parse(kind.params, inp.params), actor)


# -- the operations -----------------------------------------------------------------------------------------

def _chat_request(inp: ChatInput) -> ChatRequest:
    return ChatRequest.model_validate(inp.model_dump(exclude={"model"}))


OPERATIONS = OperationRegistry([
    Operation("add", CubeCreate, MemCube, lambda k, i, a: _sources_readable([i], k, a),
              lambda k, i, p: k.add(i, principal=p), "add", ("add",), "Store a new plaintext memory."),
    Operation("add_many", AddManyInput, list[MemCube], lambda k, i, a: _sources_readable(i.items, k, a),
              lambda k, i, p: k.add_many(i.items, principal=p), "add", ("import",),
              "Store several memories atomically: all of them or none."),
    Operation("get", GetInput, MemCube, _get,
              lambda k, i, p: k.get(i.cube_id, principal=p, as_of=i.as_of, include_deleted=i.include_deleted,
                                   true_at=i.true_at),
              None, ("get",), "Return a cube's current state, or its state at as_of."),
    Operation("update", UpdateInput, MemCube,
              lambda k, i, a: k._load(i.cube_id, a, k._update_right(i.change)),
              lambda k, i, p: k.update(i.cube_id, i.change, principal=p), "update", ("update",),
              "Change a cube's text or metadata, writing a new version."),
    Operation("delete", DeleteInput, MemCube, _on_cube(Right.ADMIN),
              lambda k, i, p: k.delete(i.cube_id, principal=p, expected_version=i.expected_version), "delete",
              ("delete",), "Soft-delete a cube (its history stays readable)."),
    Operation("forget", CubeRef, MemCube, _on_cube(Right.ADMIN, deleted=True),
              lambda k, i, p: k.forget(i.cube_id, principal=p), "forget", ("forget",),
              "Purge a cube's text and embeddings from every version; a tombstone and the audit trail remain."),
    Operation("search", SearchRequest, SearchResult, _anyone, lambda k, i, p: k.search(i, principal=p), None,
              ("search",), "Hybrid retrieval over the cubes the principal may read."),
    Operation("list_cubes", ListCubesInput, list[MemCube], _anyone, lambda k, i, p: k.list_cubes(i, principal=p),
              None, ("list",), "List the cubes of a namespace the principal may read, newest first."),
    Operation("history", HistoryInput, list[HistoryEntry], _on_cube(Right.READ, deleted=True),
              lambda k, i, p: k.history(i.cube_id, principal=p, limit=i.limit, offset=i.offset), None,
              ("history",), "List a cube's versions, oldest first."),
    Operation("get_version", VersionRef, HistoryEntry, _on_cube(Right.READ, deleted=True),
              lambda k, i, p: k.get_version(i.cube_id, i.version, principal=p), None, ("get",),
              "Return one version of a cube as it was written."),
    Operation("share", ShareInput, MemCube, _on_cube(Right.SHARE),
              lambda k, i, p: k.share(i.cube_id, i.grant, principal=p), "share", ("share",),
              "Grant a right on a cube to another principal."),
    Operation("revoke", RevokeInput, MemCube, _on_cube(Right.SHARE),
              lambda k, i, p: k.revoke(i.cube_id, i.grantee, principal=p), "revoke", ("revoke",),
              "Remove every right a principal holds on a cube; takes effect at once."),
    Operation("accept_share", CubeRef, MemCube, _on_cube(Right.READ),
              lambda k, i, p: k.accept_share(i.cube_id, principal=p), "share.accept", ("accept",),
              "Accept a cube shared with you: from now on it may enter your chat retrieval."),
    Operation("decline_share", CubeRef, MemCube, _on_cube(Right.READ),
              lambda k, i, p: k.decline_share(i.cube_id, principal=p), "share.decline", ("decline",),
              "Decline (or give up) a cube shared with you: your grant is removed at once."),
    Operation("cache", CacheJob, MemCube, _job_kind("cache"),
              lambda k, i, p: k.cache(i.cube_ids, principal=p, lm=k.models.open(i.model),
                                      mode="approximate" if i.mode == "approximate" else "exact",
                                      storage_dtype="bfloat16" if i.storage_dtype == "bfloat16" else "float32"),
              "cache", ("cache",), "Compile plaintext cubes into an activation cube (KV-cache).", job=True),
    Operation("consolidate", ConsolidateJob, MemCube, _job_kind("consolidate"),
              lambda k, i, p: k.consolidate(i.cube_ids, principal=p, lm=k.models.open(i.model), config=i.config,
                                            control=i.control),
              "consolidate", ("consolidate",), "Train a LoRA adapter on plaintext cubes (a parameter cube).",
              job=True),
    Operation("recompile", RecompileInput, MemCube, _recompile,
              lambda k, i, p: k.recompile(i.cube_id, principal=p, lm=k.models.open(i.model)), "recompile",
              ("recompile",), "Build an activation or parameter cube again from its sources' current versions."),
    Operation("archive", CubeRef, MemCube, _on_cube(Right.ADMIN),
              lambda k, i, p: k.archive(i.cube_id, principal=p), "archive", ("archive",),
              "Archive a cube; a derived one drops its KV or adapter, keeping (and restoring) its sources."),
    Operation("restore", CubeRef, MemCube, _on_cube(Right.ADMIN),
              lambda k, i, p: k.restore(i.cube_id, principal=p), "restore", ("restore",),
              "Bring an archived plaintext cube back to active."),
    Operation("undelete", CubeRef, MemCube, _on_cube(Right.ADMIN, deleted=True),
              lambda k, i, p: k.undelete(i.cube_id, principal=p), "undelete", ("undelete",),
              "Bring a soft-deleted (not forgotten) cube back to active."),
    Operation("generate", GenerateInput, GenerationResult, _generate,
              lambda k, i, p: k.generate(i.query, principal=p, lm=k.models.get(i.model),
                                         activation_id=i.activation_id, max_new_tokens=i.max_new_tokens),
              None, ("generate",), "Continue a query with an activation cube's KV injected (or simulated)."),
    Operation("generate_with_adapters", AdapterGenerateInput, GenerationResult, _adapters,
              lambda k, i, p: k.generate_with_adapters(i.query, principal=p, lm=k.models.open(i.model),
                                                       parameter_ids=i.parameter_ids,
                                                       max_new_tokens=i.max_new_tokens, chat=i.chat),
              None, ("recall",), "Answer a query with parameter cubes' adapters active (no context)."),
    Operation("chat", ChatInput, ChatResult, _generate,
              lambda k, i, p: k.chat(_chat_request(i), principal=p, lm=k.models.get(i.model)), "add",
              ("chat",), "Answer the last user turn with the principal's memories (optionally remembering it)."),
    Operation("audit", AuditInput, list[AuditRecord], _audit,
              lambda k, i, p: k.audit_log(principal=p, cube_id=i.cube_id, after_seq=i.after_seq, limit=i.limit),
              None, ("audit", "log"), "Audit records in order: one cube's, or all (administrators)."),
    Operation("verify_audit", NoInput, AuditReport, _admin, lambda k, i, p: k.verify_audit(principal=p), None,
              ("audit", "verify"), "Check the audit hash chain (administrators).", admin=True),
    Operation("create_principal", PrincipalCreate, PrincipalPublic, _admin,
              lambda k, i, p: k.create_principal(i, principal=p), "principal.create", ("principal", "create"),
              "Register a user, agent or service principal (administrators).", admin=True),
    Operation("list_principals", PageInput, list[PrincipalPublic], _admin,
              lambda k, i, p: k.list_principals(principal=p, limit=i.limit, offset=i.offset), None,
              ("principal", "list"), "List principals by name (administrators).", admin=True),
    Operation("disable_principal", PrincipalRef, PrincipalPublic, _admin,
              lambda k, i, p: k.disable_principal(i.name, principal=p), "principal.disable", ("principal", "disable"),
              "Refuse every call and key of a principal until it is enabled again (administrators).", admin=True),
    Operation("enable_principal", PrincipalRef, PrincipalPublic, _admin,
              lambda k, i, p: k.enable_principal(i.name, principal=p), "principal.enable", ("principal", "enable"),
              "Let a disabled principal act again (administrators).", admin=True),
    Operation("delete_principal", PrincipalRef, PrincipalPublic, _admin,
              lambda k, i, p: k.delete_principal(i.name, principal=p), "principal.delete", ("principal", "delete"),
              "Delete a principal: a tombstone keeps owning its cubes, its keys are revoked (administrators).",
              admin=True),
    Operation("set_trust", SetTrustInput, PrincipalPublic, _self_or_admin("name"),
              lambda k, i, p: k.set_trust(i.policy, principal=p, name=i.name), "principal.trust",
              ("principal", "trust"), "Set whose memories enter your prompts: own, accepted shares, or all readable."),
    Operation("set_admin", SetAdminInput, PrincipalPublic, _admin,
              lambda k, i, p: k.set_admin(i.name, i.is_admin, principal=p), "principal.set_admin",
              ("principal", "set-admin"), "Promote a principal to administrator or demote it; never the last one.",
              admin=True),
    Operation("get_principal", PrincipalRef, PrincipalPublic, _self_or_admin("name"),
              lambda k, i, p: k.get_principal(i.name, principal=p), None, ("principal", "show"),
              "One principal: yourself, or anyone for administrators."),
    Operation("create_api_key", ApiKeyCreateInput, ApiKeyIssued, _self_or_admin("owner"),
              lambda k, i, p: k.create_api_key(i.owner or p, i.model_dump(include={"label", "expires_at", "scope"}),
                                               principal=p), "key.create",
              ("principal", "create-key"), "Issue an API key (yours, or anyone's for administrators).", admin=True),
    Operation("list_api_keys", ListApiKeysInput, list[ApiKeyPublic], _self_or_admin("owner"),
              lambda k, i, p: k.list_api_keys(principal=p, owner=i.owner, limit=i.limit, offset=i.offset), None,
              ("principal", "keys"), "List API keys without their secrets."),
    Operation("revoke_api_key", ApiKeyRef, ApiKeyPublic, lambda k, i, a: k._key(i.key_id, a),
              lambda k, i, p: k.revoke_api_key(i.key_id, principal=p), "key.revoke", ("principal", "revoke-key"),
              "Revoke an API key at once."),
    Operation("submit_job", JobSubmit, JobRecord, _submit, lambda k, i, p: k.submit_job(i, principal=p),
              "job.submit", ("jobs", "submit"), "Queue long work (cache, consolidate) to run in the background."),
    Operation("job", JobRef, JobRecord, lambda k, i, a: k._job(i.job_id, a),
              lambda k, i, p: k.job(i.job_id, principal=p), None, ("jobs", "show"), "One job with its progress."),
    Operation("list_jobs", ListJobsInput, list[JobRecord], _anyone,
              lambda k, i, p: k.list_jobs(principal=p, state=i.state, limit=i.limit, offset=i.offset), None,
              ("jobs", "list"), "Jobs newest first: your own, or everyone's for administrators."),
    Operation("cancel_job", JobRef, JobRecord, lambda k, i, a: k._job(i.job_id, a),
              lambda k, i, p: k.cancel_job(i.job_id, principal=p), "job.cancel", ("jobs", "cancel"),
              "Cancel a job: a queued one never starts, a running one stops at its next progress report."),
    # -- conversation memory (issue 15) --------------------------------------------------------------------
    Operation("remember", RememberInput, RememberResult, _anyone, lambda k, i, p: k.remember(i, principal=p), "add",
              ("remember",), "Store conversation turns as memories; extract and resolve facts when configured."),
    Operation("extract", ExtractInput, RememberResult, lambda k, i, a: k._own_turns(i.cube_ids, a),
              lambda k, i, p: k.extract(i, principal=p), "add", ("extract",),
              "Extract and resolve facts from your remembered turns (retries a failed extraction).", job=True),
])
"""Every operation of the kernel, by name."""
