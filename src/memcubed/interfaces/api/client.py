"""The Python API: ``memcubed.open(...)`` returns a client bound to one principal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from memcubed.composition import build_kernel, job_worker
from memcubed.cube.model import MemCube, Right
from memcubed.errors import ClientClosed, ValidationError
from memcubed.interfaces.api.bundle import BundleMethods
from memcubed.interfaces.api.governance import GovernanceMethods
from memcubed.interfaces.api.planner import PlannerMethods
from memcubed.interfaces.api.scheduler import SchedulerClient
from memcubed.interfaces.api.workset import WorkingSetClient
from memcubed.kernel import Kernel, Progress
from memcubed.kernel.registry import OPERATIONS
from memcubed.kernel.types import (
    Embedder,
    KVLanguageModel,
    LanguageModel,
    LoRAConfig,
    Mode,
    ShouldCancel,
    StorageDType,
    Vector,
)
from memcubed.kernel.validation import parse
from memcubed.schemas.chat import ChatResult, GenerationResult
from memcubed.schemas.gc import GcReport
from memcubed.schemas.jobs import JobRecord
from memcubed.schemas.ops import (
    AuditRecord,
    AuditReport,
    CubeCreate,
    HistoryEntry,
    SearchFilters,
    SearchMode,
    SearchResult,
)
from memcubed.schemas.reembed import ReembedReport
from memcubed.schemas.remember import RememberResult
from memcubed.settings import Settings

__all__ = ["Memcubed", "open_store"]


def open_store(path: str | Path | None = None, *, principal: str | None = None,
               embedder: str | Embedder | None = None, settings: Settings | None = None,
               create: bool = True) -> Memcubed:
    """Open (creating it unless ``create`` is False) a store and return a client acting as ``principal``.

    Args:
        path: a SQLite file, or a ``postgresql://`` DSN; defaults to ``settings.db``. A SQLite store keeps
            tensor blobs in ``<path>.blobs/``, a PostgreSQL store in its database.
        principal: acting principal; defaults to ``settings.principal`` (``admin``).
        embedder: an Embedder, or a spec (``local``, ``none``, ``local:<model>``, ``static``, ``openai:<model>``).
            When neither it nor ``settings.embedder`` is given, an existing store opens with the embedder it
            records and a new store gets the default. A store keeps the embedder it was created with.
        settings: limits, defaults and the language models operations may name (``models``); read from
            ``MEMCUBED_*`` environment variables when omitted.
        create: make a new store when there is none at ``path`` (a new SQLite file is private to its
            owner, 0600; its folder must exist). False refuses a missing store, as the CLI does.

    Raises:
        StoreNotFound: no store at ``path`` and ``create`` is False, or a SQLite file's folder is missing.
        ConfigurationError: the embedder named differs from the one the store was indexed with.
        IntegrityError: the store's embedder record is damaged.
        DependencyMissing: the embedder, the vector index or the backend needs a package that is not installed.
        BackendUnavailable: the PostgreSQL server cannot be reached.
    """
    settings = settings or Settings()
    return Memcubed(build_kernel(path, settings=settings, embedder=embedder, create=create),
                    principal or settings.principal)


class Memcubed(BundleMethods, SchedulerClient, GovernanceMethods, PlannerMethods, WorkingSetClient):
    """A client of one kernel acting as one principal; every method is one kernel operation.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, kernel: Kernel, principal: str) -> None:
        self.kernel = kernel
        self.principal = principal
        self._owns_kernel = True
        self._closed = False

    def as_principal(self, principal: str) -> Memcubed:
        """Return a client on the same store acting as another principal (closing it leaves the store open)."""
        other = Memcubed(self.kernel, principal)
        other._owns_kernel = False
        return other

    def close(self) -> None:
        """Close the store (if this client opened it). Final: every later call raises ``ClientClosed``;
        closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._owns_kernel:
            self.kernel.close()

    def _open(self) -> Kernel:
        if self._closed or self.kernel.closed:
            raise ClientClosed("this client is closed; open the store again", principal=self.principal)
        return self.kernel

    def _checked(self, op: str, **fields: Any) -> Any:
        """Validate the arguments given (None: left to the default) with operation ``op``'s one input schema,
        so that misuse of the Python API gets the ``ValidationError`` every other interface gets ("archive"
        checks a lone cube id: its input is just that)."""
        self._open()
        return parse(OPERATIONS[op].input, {name: value for name, value in fields.items() if value is not None})

    def __enter__(self) -> Memcubed:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- operations ---------------------------------------------------------
    def add(self, text: str, **fields: Any) -> MemCube:
        """Store a plaintext memory. Fields: namespace, importance, tags, source, derived_from, meta, id."""
        return self._open().add({"text": text, **fields}, principal=self.principal)

    def add_many(self, items: Sequence[CubeCreate | dict[str, Any]], *, progress: Progress | None = None,
                 vectors: Vector | None = None) -> list[MemCube]:
        """Store several memories atomically (all or none); ``vectors`` may carry precomputed embeddings."""
        return self._open().add_many(items, principal=self.principal, progress=progress, vectors=vectors)

    def get(self, cube_id: str, *, as_of: datetime | None = None, include_deleted: bool = False,
            true_at: datetime | None = None) -> MemCube:
        """Return a cube, or its state at ``as_of`` (record time, an aware datetime); with ``true_at`` (event
        time) only if it held then."""
        inp = self._checked("get", cube_id=cube_id, as_of=as_of, include_deleted=include_deleted, true_at=true_at)
        if as_of is not None and not isinstance(as_of, datetime):
            raise ValidationError("as_of must be a datetime with a timezone", field="as_of")
        return self._open().get(inp.cube_id, principal=self.principal, as_of=inp.as_of,
                                include_deleted=inp.include_deleted, true_at=inp.true_at)

    def update(self, cube_id: str, *, expected_version: int | None = None, **fields: Any) -> MemCube:
        """Change text or metadata (text, importance, tags, source, meta); writes a new version."""
        change: dict[str, Any] = {**fields}
        if expected_version is not None:
            change["expected_version"] = expected_version
        self._checked("archive", cube_id=cube_id)
        return self._open().update(cube_id, change, principal=self.principal)

    def delete(self, cube_id: str, *, expected_version: int | None = None) -> MemCube:
        """Soft-delete a cube (history kept)."""
        self._checked("delete", cube_id=cube_id, expected_version=expected_version)
        return self._open().delete(cube_id, principal=self.principal, expected_version=expected_version)

    def forget(self, cube_id: str) -> MemCube:
        """Purge a cube's payload and embeddings everywhere, keeping a tombstone and the audit trail."""
        self._checked("archive", cube_id=cube_id)
        return self._open().forget(cube_id, principal=self.principal)

    def search(self, query: str, *, namespace: str = "default", k: int = 10,
               mode: SearchMode | str = SearchMode.HYBRID, filters: SearchFilters | dict[str, Any] | None = None,
               question_date: datetime | None = None) -> SearchResult:
        """Hybrid search over the cubes this principal may read; ``question_date`` anchors relative times in
        the query ("last week"), and memories of the time it names rank higher."""
        self._open()
        request: dict[str, Any] = {"query": query, "namespace": namespace, "k": k, "mode": mode,
                                   "question_date": question_date}
        if filters is not None:
            request["filters"] = filters.model_dump(exclude_unset=True) if isinstance(filters, SearchFilters) \
                else filters
        return self._open().search(request, principal=self.principal)

    def list_cubes(self, *, namespace: str = "default", filters: SearchFilters | dict[str, Any] | None = None,
                   limit: int = 100, offset: int = 0) -> list[MemCube]:
        """List the cubes of ``namespace`` this principal may read, newest first (``filters`` as in search)."""
        self._open()
        request: dict[str, Any] = {"namespace": namespace, "limit": limit, "offset": offset}
        if filters is not None:
            request["filters"] = filters.model_dump(exclude_unset=True) if isinstance(filters, SearchFilters) \
                else filters
        return self._open().list_cubes(request, principal=self.principal)

    def cache(self, cube_ids: Sequence[str], *, lm: KVLanguageModel | None = None, model: str | None = None,
              mode: Mode = "exact", storage_dtype: StorageDType = "float32",
              progress: Progress | None = None) -> MemCube:
        """Compile plaintext cubes into an activation cube (KV-cache) for ``lm``, or for the configured model
        ``model`` (an id of ``Settings.models``; the default model when both are omitted)."""
        self._checked("cache", cube_ids=_listed(cube_ids), model=model, mode=mode, storage_dtype=storage_dtype)
        return self._open().cache(cube_ids, principal=self.principal, lm=lm or self.kernel.models.open(model),
                                  mode=mode, storage_dtype=storage_dtype, progress=progress)

    def generate(self, query: str, *, activation_id: str | None = None,
                 lm: KVLanguageModel | LanguageModel | None = None, model: str | None = None,
                 max_new_tokens: int = 64) -> GenerationResult:
        """Continue ``query`` with an activation cube's KV injected into ``lm`` (or the configured ``model``);
        a model without KV access gets the cube's sources as a byte-stable prompt prefix instead.

        A plain completion of the cached text and ``query`` (no chat template): an instruction-tuned model
        may end a bare question at once, so phrase it to continue (``"\nQuestion: ...\nAnswer:"``), or use
        :meth:`chat`."""
        self._checked("generate", query=query, activation_id=activation_id, model=model,
                      max_new_tokens=max_new_tokens)
        return self._open().generate(query, principal=self.principal, lm=lm or self.kernel.models.get(model),
                                    activation_id=activation_id, max_new_tokens=max_new_tokens)

    def chat(self, messages: str | Sequence[dict[str, str]], *, lm: KVLanguageModel | LanguageModel | None = None,
             model: str | None = None, namespace: str = "default", k: int = 5, activation_id: str | None = None,
             remember: bool = False, conversation: str | None = None, max_new_tokens: int = 128,
             use_working_set: bool = True, question_date: datetime | None = None, **filters: Any) -> ChatResult:
        """Answer the last user turn with this principal's memories (retrieved, or an activation cube's).

        ``messages`` is a question or OpenAI-style turns; ``lm`` defaults to the configured ``model`` (an
        open one gets the memories' KV injected); an OpenAI-compatible model gets the memories as a byte-stable
        prompt prefix.
        ``remember`` stores the question and the reply as new memories. ``filters`` are search filters.
        Your working set of ``namespace`` leads the memories unless ``use_working_set`` is False.
        """
        if not isinstance(messages, str | list | tuple):
            raise ValidationError("messages must be a question or a list of turns", field="messages")
        self._open()
        turns = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
        request = {"messages": turns, "namespace": namespace, "k": k, "activation_id": activation_id,
                   "remember": remember, "conversation": conversation, "max_new_tokens": max_new_tokens,
                   "filters": filters, "use_working_set": use_working_set, "question_date": question_date}
        return self._open().chat(request, principal=self.principal, lm=lm or self.kernel.models.get(model))

    def submit_job(self, kind: str, **params: Any) -> JobRecord:
        """Queue long work (``cache``: cube_ids, model, mode, storage_dtype) to run in the background;
        ``model`` is a configured model id."""
        self._open()
        return self._open().submit_job({"kind": kind, "params": params}, principal=self.principal)

    def job(self, job_id: str) -> JobRecord:
        """Return a job with its progress."""
        self._checked("job", job_id=job_id)
        return self._open().job(job_id, principal=self.principal)

    def list_jobs(self, *, state: str | None = None, limit: int = 50, offset: int = 0) -> list[JobRecord]:
        """Return this principal's jobs (an admin's: everyone's), newest first."""
        self._checked("list_jobs", state=state, limit=limit, offset=offset)
        return self._open().list_jobs(principal=self.principal, state=state, limit=limit, offset=offset)

    jobs = list_jobs

    def cancel_job(self, job_id: str) -> JobRecord:
        """Cancel a queued or running job."""
        self._checked("cancel_job", job_id=job_id)
        return self._open().cancel_job(job_id, principal=self.principal)

    def collect_garbage(self, *, dry_run: bool = False, grace_s: float | None = None,
                        retention_s: float | None = None) -> GcReport:
        """Purge cubes deleted more than ``retention_s`` ago, then remove tensor blobs no live cube uses, once
        older than ``grace_s`` (administrators)."""
        self._checked("collect_garbage", dry_run=dry_run, grace_s=grace_s, retention_s=retention_s)
        return self._open().collect_garbage(principal=self.principal, dry_run=dry_run, grace_s=grace_s,
                                            retention_s=retention_s)

    def reembed(self, embedder: str, *, batch: int = 256, progress: Progress | None = None) -> ReembedReport:
        """Move the store to ``embedder`` here and now (administrators): every live cube is embedded again,
        then vectors, record and query cache switch at once. ``submit_job("reembed", ...)`` runs it as a
        durable job instead."""
        self._checked("reembed", embedder=embedder, batch=batch)
        return self._open().reembed(embedder, principal=self.principal, batch=batch, progress=progress)

    def run_jobs(self, *, limit: int | None = None) -> list[JobRecord]:
        """Run queued jobs in this process until none is left (or ``limit`` ran); return them finished."""
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise ValidationError("limit must be a positive integer", field="limit")
        return job_worker(self._open()).run_pending(limit=limit)

    def consolidate(self, cube_ids: Sequence[str], *, lm: KVLanguageModel | None = None, model: str | None = None,
                    config: LoRAConfig | dict[str, Any] | None = None, control: Sequence[tuple[str, str]] | None = None,
                    progress: Progress | None = None, should_cancel: ShouldCancel | None = None) -> MemCube:
        """Train a LoRA adapter on plaintext cubes (their text, plus ``meta["qa"]`` pairs) into a parameter cube,
        with recall evaluated before and after (``meta["evaluation"]``); see ``Kernel.consolidate``."""
        self._checked("consolidate", cube_ids=_listed(cube_ids), model=model,
                      config=config if isinstance(config, dict | None) else None, control=control)
        return self._open().consolidate(cube_ids, principal=self.principal, lm=lm or self.kernel.models.open(model),
                                       config=config,
                                       control=control, progress=progress, should_cancel=should_cancel)

    def recompile(self, cube_id: str, *, lm: KVLanguageModel | None = None, model: str | None = None,
                  control: Sequence[tuple[str, str]] | None = None, progress: Progress | None = None,
                  should_cancel: ShouldCancel | None = None) -> MemCube:
        """Build an activation or parameter cube again from its sources' current versions (deleted or forgotten
        ones left out)."""
        self._checked("recompile", cube_id=cube_id, model=model)
        return self._open().recompile(cube_id, principal=self.principal, lm=lm or self.kernel.models.open(model),
                                     control=control,
                                     progress=progress, should_cancel=should_cancel)

    def archive(self, cube_id: str) -> MemCube:
        """Archive a cube; an activation or parameter cube drops its KV or adapter, keeping (and restoring) its
        sources."""
        self._checked("archive", cube_id=cube_id)
        return self._open().archive(cube_id, principal=self.principal)

    def restore(self, cube_id: str) -> MemCube:
        """Bring an archived plaintext cube back to ``active``."""
        self._checked("restore", cube_id=cube_id)
        return self._open().restore(cube_id, principal=self.principal)

    def undelete(self, cube_id: str) -> MemCube:
        """Bring a soft-deleted (not forgotten) cube back to ``active``."""
        self._checked("undelete", cube_id=cube_id)
        return self._open().undelete(cube_id, principal=self.principal)

    def generate_with_adapters(self, query: str, parameter_ids: Sequence[str], *, lm: KVLanguageModel | None = None,
                               model: str | None = None, max_new_tokens: int = 64,
                               chat: bool = True) -> GenerationResult:
        """Answer ``query`` with the adapters of parameter cubes active (no context in the prompt)."""
        if not isinstance(parameter_ids, list | tuple):
            raise ValidationError("parameter_ids must be a list of cube ids", field="parameter_ids")
        self._checked("generate_with_adapters", query=query, parameter_ids=_listed(parameter_ids), model=model,
                      max_new_tokens=max_new_tokens, chat=chat)
        return self._open().generate_with_adapters(query, principal=self.principal,
                                                  lm=lm or self.kernel.models.open(model),
                                                  parameter_ids=parameter_ids, max_new_tokens=max_new_tokens, chat=chat)

    def history(self, cube_id: str, *, limit: int = 100, offset: int = 0) -> list[HistoryEntry]:
        """Return a cube's versions, oldest first."""
        self._checked("history", cube_id=cube_id, limit=limit, offset=offset)
        return self._open().history(cube_id, principal=self.principal, limit=limit, offset=offset)

    def get_version(self, cube_id: str, version: int) -> HistoryEntry:
        """Return one version of a cube."""
        self._checked("get_version", cube_id=cube_id, version=version)
        return self._open().get_version(cube_id, version, principal=self.principal)

    def share(self, cube_id: str, principal: str, right: Right | str = Right.READ) -> MemCube:
        """Grant ``right`` (read, write, share, admin) on a cube to ``principal``."""
        self._checked("archive", cube_id=cube_id)
        return self._open().share(cube_id, {"principal": principal, "right": right}, principal=self.principal)

    def revoke(self, cube_id: str, principal: str) -> MemCube:
        """Remove ``principal``'s rights on a cube."""
        self._checked("revoke", cube_id=cube_id, grantee=principal)
        return self._open().revoke(cube_id, principal, principal=self.principal)

    def audit(self, *, cube_id: str | None = None, after_seq: int = 0, limit: int = 1000) -> list[AuditRecord]:
        """Return audit records (one cube's, or all for administrators)."""
        self._checked("audit", cube_id=cube_id, after_seq=after_seq, limit=limit)
        return self._open().audit_log(principal=self.principal, cube_id=cube_id, after_seq=after_seq, limit=limit)

    def verify_audit(self) -> AuditReport:
        """Verify the audit hash chain (administrators)."""
        return self._open().verify_audit(principal=self.principal)



    # -- conversation memory (issue 15) -------------------------------------------------------------------
    def remember(self, turns: Sequence[dict[str, Any]], *, namespace: str = "default",
                 extract: bool = True) -> RememberResult:
        """Store conversation turns (speaker, role, text, time, conversation_id, session_id, turn_id) as
        memories; with an extractor configured, extract facts and resolve them against what you know."""
        if not isinstance(turns, list | tuple):
            raise ValidationError("turns must be a list of turns", field="turns")
        self._open()
        return self._open().remember({"turns": list(turns), "namespace": namespace, "extract": extract},
                                     principal=self.principal)

    def extract(self, cube_ids: Sequence[str]) -> RememberResult:
        """Extract and resolve facts from your remembered turn cubes (the retry of a failed extraction)."""
        inp = self._checked("extract", cube_ids=_listed(cube_ids))
        return self._open().extract(inp, principal=self.principal)


def _listed(ids: object) -> object:
    """A sequence of ids as a list for its schema (a lone string is refused there, not split into letters)."""
    return list(ids) if isinstance(ids, list | tuple) else ids
