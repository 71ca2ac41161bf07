"""Operations as data: every kernel operation declared once, with its one input schema.

Interfaces are generated from :data:`OPERATIONS` or checked against it (a parity test), and a planner
validates proposed calls with :meth:`OperationRegistry.validate` before anything runs. What an
:class:`Operation` holds is in :mod:`memcubed.kernel.operation`; the authorize steps are in
:mod:`memcubed.kernel.authorize`.
"""
from __future__ import annotations

import base64
import io

from memcubed.cube.model import MemCube, Right
from memcubed.kernel.authorize import (
    admin_only,
    anyone,
    can_audit,
    can_generate,
    can_get,
    can_recompile,
    can_set_working_set,
    can_submit,
    can_use_adapters,
    job_check,
    on_cube,
    self_or_admin,
    sources_readable,
)
from memcubed.kernel.kernel import Kernel
from memcubed.kernel.operation import Cli, Http, Operation, OperationRegistry
from memcubed.schemas.bundle import BundleExport, BundleImportInput, BundleImportReport, BundleSelection
from memcubed.schemas.chat import ChatRequest, ChatResult, GenerationResult
from memcubed.schemas.gc import GcInput, GcReport
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
from memcubed.schemas.plan import ExecutePlanInput, PlanProposal, PlanReport, ProposePlanInput
from memcubed.schemas.reembed import ReembedInput, ReembedReport
from memcubed.schemas.remember import ExtractInput, RememberInput, RememberResult
from memcubed.schemas.scheduler import DecisionRecord, SchedulerLogInput, SchedulerTick, SchedulerTickInput
from memcubed.schemas.server import ApiKeyIssued, ApiKeyPublic
from memcubed.schemas.workset import WorkingSet, WorkingSetInput, WorkingSetRef

__all__ = ["OPERATIONS", "Operation", "OperationRegistry"]


def _export(kernel: Kernel, inp: BundleSelection, principal: str) -> BundleExport:
    """``export_bundle`` where no file can be streamed (MCP, the registry): the bundle base64-encoded."""
    buffer = io.BytesIO()
    report = kernel.export_bundle(inp, principal=principal, out=buffer)
    return BundleExport(data=base64.b64encode(buffer.getvalue()).decode("ascii"), report=report)


# -- the operations -----------------------------------------------------------------------------------------

def _chat_request(inp: ChatInput) -> ChatRequest:
    return ChatRequest.model_validate(inp.model_dump(exclude={"model"}))


_NS = {"namespace": ("--namespace", "-n")}
_TAG = {"tags": ("--tag", "-t")}
_ONE = ("cube_id",)


def _done(what: str) -> Cli:
    """The command of an operation on one cube, saying what became of it."""
    return Cli(args=_ONE, line=f"{{out.id}} {what} (v{{out.version}})")


def _named(what: str) -> Cli:
    """The command of an operation on one principal, saying what became of it."""
    return Cli(args=("name",), line=f"{what} {{out.name}}")


OPERATIONS = OperationRegistry([
    Operation("add", CubeCreate, MemCube, lambda k, i, a: sources_readable([i], k, a),
              lambda k, i, p: k.add(i, principal=p), "add", ("add",), "Store a new plaintext memory.",
              http=Http("POST", "/cubes", 201, "cubes", body="*"),
              command=Cli(args=("text",), flags=_NS | _TAG, expand={"source": "source_"},
                          defaults={"source_type": "cli"}, line="{out.id}")),
    Operation("add_many", AddManyInput, list[MemCube], lambda k, i, a: sources_readable(i.items, k, a),
              lambda k, i, p: k.add_many(i.items, principal=p), "add", ("import",),
              "Store several memories atomically: all of them or none.",
              http=Http("POST", "/cubes/batch", 201, "cubes", body="items")),
    Operation("get", GetInput, MemCube, can_get,
              lambda k, i, p: k.get(i.cube_id, principal=p, as_of=i.as_of, include_deleted=i.include_deleted,
                                   true_at=i.true_at),
              None, ("get",), "Return a cube's current state, or its state at as_of.",
              http=Http("GET", "/cubes/{cube_id}", tag="cubes",
              doc="Return a cube's current state, or its state at ``as_of`` (record time); ``true_at``: only "
                  "if it held then."), command=Cli(args=_ONE, show="show_cube")),
    Operation("update", UpdateInput, MemCube,
              lambda k, i, a: k._load(i.cube_id, a, k._update_right(i.change)),
              lambda k, i, p: k.update(i.cube_id, i.change, principal=p), "update", ("update",),
              "Change a cube's text or metadata, writing a new version.",
              http=Http("PATCH", "/cubes/{cube_id}", tag="cubes", body="change"),
              command=Cli(args=_ONE, flags=_TAG, expand={"change": ""}, line="{out.id} v{out.version}")),
    Operation("delete", DeleteInput, MemCube, on_cube(Right.ADMIN),
              lambda k, i, p: k.delete(i.cube_id, principal=p, expected_version=i.expected_version), "delete",
              ("delete",), "Soft-delete a cube (its history stays readable).",
              http=Http("DELETE", "/cubes/{cube_id}", tag="cubes",
              doc="Soft-delete a cube: hidden from get and search, its history kept (needs admin on the "
                  "cube)."), command=_done("deleted")),
    Operation("forget", CubeRef, MemCube, on_cube(Right.ADMIN, deleted=True),
              lambda k, i, p: k.forget(i.cube_id, principal=p), "forget", ("forget",),
              "Purge a cube's text and embeddings from every version; a tombstone and the audit trail remain.",
              http=Http("POST", "/cubes/{cube_id}/forget", tag="cubes"), command=_done("forgotten")),
    Operation("search", SearchRequest, SearchResult, anyone, lambda k, i, p: k.search(i, principal=p), None,
              ("search",), "Hybrid retrieval over the cubes the principal may read.",
              http=Http("POST", "/search", tag="cubes", body="*"),
              command=Cli(args=("query",), flags=_NS | _TAG | {"k": ("-k",)}, expand={"filters": ""},
                          show="show_search")),
    Operation("list_cubes", ListCubesInput, list[MemCube], anyone, lambda k, i, p: k.list_cubes(i, principal=p),
              None, ("list",), "List the cubes of a namespace the principal may read, newest first.",
              command=Cli(flags=_NS | _TAG, expand={"filters": ""}, show="show_cube_lines")),
    Operation("history", HistoryInput, list[HistoryEntry], on_cube(Right.READ, deleted=True),
              lambda k, i, p: k.history(i.cube_id, principal=p, limit=i.limit, offset=i.offset), None,
              ("history",), "List a cube's versions, oldest first.",
              http=Http("GET", "/cubes/{cube_id}/history", tag="cubes", page="offset"),
              command=Cli(args=_ONE, show="show_history")),
    Operation("get_version", VersionRef, HistoryEntry, on_cube(Right.READ, deleted=True),
              lambda k, i, p: k.get_version(i.cube_id, i.version, principal=p), None, ("get",),
              "Return one version of a cube as it was written.",
              http=Http("GET", "/cubes/{cube_id}/versions/{version}", tag="cubes"),
              command=Cli(args=_ONE, show="show_cube", result="cube", when="version")),
    Operation("share", ShareInput, MemCube, on_cube(Right.SHARE),
              lambda k, i, p: k.share(i.cube_id, i.grant, principal=p), "share", ("share",),
              "Grant a right on a cube to another principal.",
              http=Http("POST", "/cubes/{cube_id}/share", tag="cubes", body="grant",
              doc="Grant a right on a cube to another principal, replacing any grant it had."),
              command=Cli(args=(*_ONE, "principal"), expand={"grant": ""},
                          line="{principal} may {right} {out.id} (v{out.version})")),
    Operation("revoke", RevokeInput, MemCube, on_cube(Right.SHARE),
              lambda k, i, p: k.revoke(i.cube_id, i.grantee, principal=p), "revoke", ("revoke",),
              "Remove every right a principal holds on a cube; takes effect at once.",
              http=Http("DELETE", "/cubes/{cube_id}/grants/{grantee}", tag="cubes"),
              command=Cli(args=(*_ONE, "principal"), names={"grantee": "principal"},
                          line="{principal} has no rights on {out.id} (v{out.version})")),
    Operation("accept_share", CubeRef, MemCube, on_cube(Right.READ),
              lambda k, i, p: k.accept_share(i.cube_id, principal=p), "share.accept", ("accept",),
              "Accept a cube shared with you: from now on it may enter your chat retrieval.",
              http=Http("POST", "/cubes/{cube_id}/accept", tag="cubes"),
              command=Cli(args=_ONE, line="accepted {out.id}")),
    Operation("decline_share", CubeRef, MemCube, on_cube(Right.READ),
              lambda k, i, p: k.decline_share(i.cube_id, principal=p), "share.decline", ("decline",),
              "Decline (or give up) a cube shared with you: your grant is removed at once.",
              http=Http("POST", "/cubes/{cube_id}/decline", tag="cubes"),
              command=Cli(args=_ONE, line="declined {out.id}")),
    Operation("cache", CacheJob, MemCube, job_check("cache"),
              lambda k, i, p: k.cache(i.cube_ids, principal=p, lm=k.models.open(i.model),
                                      mode="approximate" if i.mode == "approximate" else "exact",
                                      storage_dtype="bfloat16" if i.storage_dtype == "bfloat16" else "float32"),
              "cache", ("cache",), "Compile plaintext cubes into an activation cube (KV-cache).", job=True,
              http=Http("POST", "/cache", 202, "jobs", body="*", submit=True,
              doc="Compile plaintext cubes into an activation cube (KV-cache) as a background job; poll "
                  "``/jobs/{id}``.")),
    Operation("consolidate", ConsolidateJob, MemCube, job_check("consolidate"),
              lambda k, i, p: k.consolidate(i.cube_ids, principal=p, lm=k.models.open(i.model), config=i.config,
                                            control=i.control),
              "consolidate", ("consolidate",), "Train a LoRA adapter on plaintext cubes (a parameter cube).",
              job=True,
              http=Http("POST", "/consolidate", 202, body="*", submit=True,
              doc="Train a LoRA adapter on plaintext cubes as a background job; poll ``/jobs/{id}``.")),
    Operation("recompile", RecompileInput, MemCube, can_recompile,
              lambda k, i, p: k.recompile(i.cube_id, principal=p, lm=k.models.open(i.model)), "recompile",
              ("recompile",), "Build an activation or parameter cube again from its sources' current versions.",
              http=Http("POST", "/cubes/{cube_id}/recompile")),
    Operation("archive", CubeRef, MemCube, on_cube(Right.ADMIN),
              lambda k, i, p: k.archive(i.cube_id, principal=p), "archive", ("archive",),
              "Archive a cube; a derived one drops its KV or adapter, keeping (and restoring) its sources.",
              http=Http("POST", "/cubes/{cube_id}/archive"), command=Cli(args=_ONE, show="show_archived")),
    Operation("restore", CubeRef, MemCube, on_cube(Right.ADMIN),
              lambda k, i, p: k.restore(i.cube_id, principal=p), "restore", ("restore",),
              "Bring an archived plaintext cube back to active.",
              http=Http("POST", "/cubes/{cube_id}/restore"), command=_done("active again")),
    Operation("undelete", CubeRef, MemCube, on_cube(Right.ADMIN, deleted=True),
              lambda k, i, p: k.undelete(i.cube_id, principal=p), "undelete", ("undelete",),
              "Bring a soft-deleted (not forgotten) cube back to active.",
              http=Http("POST", "/cubes/{cube_id}/undelete"), command=_done("active again")),
    Operation("generate", GenerateInput, GenerationResult, can_generate,
              lambda k, i, p: k.generate(i.query, principal=p, lm=k.models.get(i.model),
                                         activation_id=i.activation_id, max_new_tokens=i.max_new_tokens),
              None, ("generate",), "Continue a query with an activation cube's KV injected (or simulated).",
              http=Http("POST", "/generate", body="*",
              doc="Continue a query with an activation cube's KV injected (a closed model gets its sources as "
                  "a prefix).")),
    Operation("generate_with_adapters", AdapterGenerateInput, GenerationResult, can_use_adapters,
              lambda k, i, p: k.generate_with_adapters(i.query, principal=p, lm=k.models.open(i.model),
                                                       parameter_ids=i.parameter_ids,
                                                       max_new_tokens=i.max_new_tokens, chat=i.chat),
              None, ("recall",), "Answer a query with parameter cubes' adapters active (no context).",
              http=Http("POST", "/generate/adapters", body="*")),
    Operation("chat", ChatInput, ChatResult, can_generate,
              lambda k, i, p: k.chat(_chat_request(i), principal=p, lm=k.models.get(i.model)), "add",
              ("chat",), "Answer the last user turn with the principal's memories (optionally remembering it).",
              http=Http("POST", "/chat", body="*")),
    Operation("audit", AuditInput, list[AuditRecord], can_audit,
              lambda k, i, p: k.audit_log(principal=p, cube_id=i.cube_id, after_seq=i.after_seq, limit=i.limit),
              None, ("audit", "log"), "Audit records in order: one cube's, or all (administrators).",
              http=Http("GET", "/audit", tag="audit", page="seq",
              doc="Audit records in order: one cube's (whole for its administrators, else your own records on "
                  "it), or all of them (administrators)."),
              command=Cli(flags={"cube_id": ("--cube",), "after_seq": ("--after",)}, defaults={"limit": 1000},
                          show="show_audit")),
    Operation("verify_audit", NoInput, AuditReport, admin_only, lambda k, i, p: k.verify_audit(principal=p), None,
              ("audit", "verify"), "Check the audit hash chain (administrators).", admin=True,
              http=Http("GET", "/audit/verify", tag="audit")),
    Operation("create_principal", PrincipalCreate, PrincipalPublic, admin_only,
              lambda k, i, p: k.create_principal(i, principal=p), "principal.create", ("principal", "create"),
              "Register a user, agent or service principal (administrators).", admin=True,
              http=Http("POST", "/principals", 201, "principals", body="*",
              doc="Register a user, agent or service principal (administrators); give it a key with "
                  "``create_api_key``.")),
    Operation("list_principals", PageInput, list[PrincipalPublic], admin_only,
              lambda k, i, p: k.list_principals(principal=p, limit=i.limit, offset=i.offset), None,
              ("principal", "list"), "List principals by name (administrators).", admin=True,
              http=Http("GET", "/principals", tag="principals", page="offset"),
              command=Cli(defaults={"limit": 1000}, show="show_principals")),
    Operation("disable_principal", PrincipalRef, PrincipalPublic, admin_only,
              lambda k, i, p: k.disable_principal(i.name, principal=p), "principal.disable", ("principal", "disable"),
              "Refuse every call and key of a principal until it is enabled again (administrators).", admin=True,
              http=Http("POST", "/principals/{name}/disable", tag="principals"), command=_named("disabled")),
    Operation("enable_principal", PrincipalRef, PrincipalPublic, admin_only,
              lambda k, i, p: k.enable_principal(i.name, principal=p), "principal.enable", ("principal", "enable"),
              "Let a disabled principal act again (administrators).", admin=True,
              http=Http("POST", "/principals/{name}/enable", tag="principals"), command=_named("enabled")),
    Operation("delete_principal", PrincipalRef, PrincipalPublic, admin_only,
              lambda k, i, p: k.delete_principal(i.name, principal=p), "principal.delete", ("principal", "delete"),
              "Delete a principal: a tombstone keeps owning its cubes, its keys are revoked (administrators).",
              admin=True,
              http=Http("DELETE", "/principals/{name}", tag="principals"), command=_named("deleted")),
    Operation("set_trust", SetTrustInput, PrincipalPublic, self_or_admin("name"),
              lambda k, i, p: k.set_trust(i.policy, principal=p, name=i.name), "principal.trust",
              ("principal", "trust"), "Set whose memories enter your prompts: own, accepted shares, or all readable.",
              http=Http("PUT", "/principals/{name}/trust", tag="principals", body="*"),
              command=Cli(args=("policy",), line="trust {out.trust}: {out.name}")),
    Operation("set_admin", SetAdminInput, PrincipalPublic, admin_only,
              lambda k, i, p: k.set_admin(i.name, i.is_admin, principal=p), "principal.set_admin",
              ("principal", "set-admin"),
              "Promote a principal to administrator or demote it (administrators; never the last one).",
              admin=True,
              http=Http("PUT", "/principals/{name}/admin", tag="principals", body="*")),
    Operation("get_principal", PrincipalRef, PrincipalPublic, self_or_admin("name"),
              lambda k, i, p: k.get_principal(i.name, principal=p), None, ("principal", "show"),
              "One principal: yourself, or anyone for administrators.",
              http=Http("GET", "/principals/{name}", tag="principals")),
    Operation("create_api_key", ApiKeyCreateInput, ApiKeyIssued, self_or_admin("owner"),
              lambda k, i, p: k.create_api_key(i.owner or p, i.model_dump(include={"label", "expires_at", "scope"}),
                                               principal=p), "key.create",
              ("principal", "create-key"), "Issue an API key (yours, or anyone's for administrators).", admin=True),
    Operation("list_api_keys", ListApiKeysInput, list[ApiKeyPublic], self_or_admin("owner"),
              lambda k, i, p: k.list_api_keys(principal=p, owner=i.owner, limit=i.limit, offset=i.offset), None,
              ("principal", "keys"), "List API keys without their secrets.",
              command=Cli(args=("name",), names={"owner": "name"}, defaults={"limit": 1000}, show="show_keys")),
    Operation("revoke_api_key", ApiKeyRef, ApiKeyPublic, lambda k, i, a: k._key(i.key_id, a),
              lambda k, i, p: k.revoke_api_key(i.key_id, principal=p), "key.revoke", ("principal", "revoke-key"),
              "Revoke an API key at once (its owner or an administrator).",
              http=Http("DELETE", "/keys/{key_id}", tag="principals"),
              command=Cli(args=("key_id",), line="revoked key {out.key_id} of {out.principal}")),
    Operation("submit_job", JobSubmit, JobRecord, can_submit, lambda k, i, p: k.submit_job(i, principal=p),
              "job.submit", ("jobs", "submit"), "Queue long work (cache, consolidate) to run in the background.",
              http=Http("POST", "/jobs", 202, body="*",
              doc="Queue long work of any job kind (``cache``, ``consolidate``) with its params.")),
    Operation("job", JobRef, JobRecord, lambda k, i, a: k._job(i.job_id, a),
              lambda k, i, p: k.job(i.job_id, principal=p), None, ("jobs", "show"), "One job with its progress.",
              http=Http("GET", "/jobs/{job_id}", tag="jobs",
              doc="One job with its progress (``done`` of ``total``), result or error."),
              command=Cli(args=("job_id",), show="show_job")),
    Operation("list_jobs", ListJobsInput, list[JobRecord], anyone,
              lambda k, i, p: k.list_jobs(principal=p, state=i.state, limit=i.limit, offset=i.offset), None,
              ("jobs", "list"), "Jobs newest first: your own, or everyone's for administrators.",
              http=Http("GET", "/jobs", tag="jobs", page="offset"), command=Cli(show="show_jobs")),
    Operation("cancel_job", JobRef, JobRecord, lambda k, i, a: k._job(i.job_id, a),
              lambda k, i, p: k.cancel_job(i.job_id, principal=p), "job.cancel", ("jobs", "cancel"),
              "Cancel a job: a queued one never starts, a running one stops at its next progress report.",
              http=Http("POST", "/jobs/{job_id}/cancel", tag="jobs")),
    # -- portable bundles (issue 15 item 7) ------------------------------------------------------------------
    Operation("export_bundle", BundleSelection, BundleExport, anyone, lambda k, i, p: _export(k, i, p), "export",
              ("export",), "Write the cubes you may read (every form, every version) into one portable bundle."),
    Operation("import_bundle", BundleImportInput, BundleImportReport, self_or_admin("owner"),
              lambda k, i, p: k.import_bundle(i.data, principal=p, namespace=i.namespace, owner=i.owner), "import",
              ("import",), "Load a bundle's cubes into a namespace under new ids; every hash is verified first."),
    # -- the LLM planner (kernel.planner) -------------------------------------------------------------------
    Operation("propose_plan", ProposePlanInput, PlanProposal, lambda k, i, a: k.models.check(i.model),
              lambda k, i, p: k.propose_plan(i.goal, principal=p, lm=k.models.get(i.model)), "plan.propose",
              ("plan", "propose"), "Ask a language model for a plan of operations from your recent events and goal.",
              http=Http("POST", "/plans/propose", tag="planner", body="*")),
    Operation("execute_plan", ExecutePlanInput, PlanReport, anyone,
              lambda k, i, p: k.execute_plan(i.plan, principal=p, dry_run=i.dry_run), "plan.execute",
              ("plan", "execute"), "Check every step of a plan against your rights and budgets, then run the valid"
              " ones; rejected steps are audited with their reason.",
              http=Http("POST", "/plans/execute", tag="planner", body="*",
              doc="Check every step against your rights and budgets, then run the valid ones (none with "
                  "``dry_run``). Administration is never planned over HTTP: those steps are rejected.")),
    # -- durable jobs (issue 14 item 5) --
    Operation("collect_garbage", GcInput, GcReport, admin_only,
              lambda k, i, p: k.collect_garbage(principal=p, dry_run=i.dry_run, grace_s=i.grace_s,
                                                retention_s=i.retention_s), "gc", ("gc",),
              "Purge deleted cubes past their retention, then remove tensor blobs no live cube uses once older"
              " than the grace period; dry_run lists them (administrators).", admin=True,
              http=Http("POST", "/gc", tag="jobs", body="*")),
    Operation("reembed", ReembedInput, ReembedReport, job_check("reembed"),
              lambda k, i, p: k.reembed(i.embedder, principal=p, batch=i.batch), "embedder.switch", ("reembed",),
              "Move the store to another embedder: re-embed every live cube, then switch atomically; search keeps"
              " the old vectors until then (administrators).", job=True, admin=True,
              http=Http("POST", "/reembed", 202, "jobs", body="*", submit=True,
                        doc="Move the store to another embedder as a background job (administrators); poll "
                            "``/jobs/{id}``. Search keeps the old vectors until the job switches, atomically, at "
                            "its end.")),
    # -- the scheduler (issue 14) --------------------------------------------------------------------------
    Operation("scheduler_plan", SchedulerTickInput, SchedulerTick, admin_only,
              lambda k, i, p: k.scheduler_plan(principal=p, policy=i.policy), None, ("scheduler", "plan"),
              "Dry run: what the scheduler would decide next, with scores and budgets; writes nothing"
              " (administrators).", admin=True,
              http=Http("POST", "/scheduler/plan", tag="scheduler", body="*")),
    Operation("scheduler_run", SchedulerTickInput, SchedulerTick, admin_only,
              lambda k, i, p: k.scheduler_run(principal=p, policy=i.policy), "scheduler.decision",
              ("scheduler", "run"),
              "One scheduler tick: decide, then submit, evict or defer within budgets (administrators).",
              admin=True,
              http=Http("POST", "/scheduler/run", tag="scheduler", body="*")),
    Operation("scheduler_log", SchedulerLogInput, list[DecisionRecord], anyone,
              lambda k, i, p: k.scheduler_log(principal=p, after_seq=i.after_seq, limit=i.limit, action=i.action),
              None, ("scheduler", "log"), "Scheduler decisions with their reasons: about your cubes, or all (admin).",
              http=Http("GET", "/scheduler/log", tag="scheduler", page="seq"),
              command=Cli(flags={"after_seq": ("--after",)}, show="show_decision_log")),
    # -- working set (issue 14, item 3): the per-namespace hot prefix chat reuses --------------------------
    Operation("set_working_set", WorkingSetInput, WorkingSet, can_set_working_set,
              lambda k, i, p: k.set_working_set(i.namespace, i.cube_ids, principal=p, lm=k.models.get(i.model)),
              "working_set.set", ("working-set", "set"),
              "Keep memories (or the hottest, under budget) as your namespace's working set: one exact KV prefix"
              " chat puts first.", job=True,
              http=Http("POST", "/working-set", body="*")),
    Operation("working_set", WorkingSetRef, WorkingSet, anyone,
              lambda k, i, p: k.working_set(i.namespace, principal=p), None, ("working-set", "show"),
              "Your working set of a namespace, and whether chat would serve it now.",
              http=Http("GET", "/working-set"), command=Cli(flags=_NS, show="show_working_set")),
    Operation("clear_working_set", WorkingSetRef, WorkingSet, anyone,
              lambda k, i, p: k.clear_working_set(i.namespace, principal=p), "working_set.clear",
              ("working-set", "clear"), "Drop your working set of a namespace (archived); chat retrieves as before.",
              http=Http("DELETE", "/working-set")),
    # -- conversation memory (issue 15) --------------------------------------------------------------------
    Operation("remember", RememberInput, RememberResult, anyone, lambda k, i, p: k.remember(i, principal=p), "add",
              ("remember",), "Store conversation turns as memories; extract and resolve facts when configured.",
              http=Http("POST", "/remember", body="*",
              doc="Store conversation turns as your memories; facts are extracted and resolved when an "
                  "extractor is set.")),
    Operation("extract", ExtractInput, RememberResult, lambda k, i, a: k._own_turns(i.cube_ids, a),
              lambda k, i, p: k.extract(i, principal=p), "add", ("extract",),
              "Extract and resolve facts from your remembered turns (retries a failed extraction).", job=True,
              http=Http("POST", "/extract", body="*")),
])
"""Every operation of the kernel, by name."""
