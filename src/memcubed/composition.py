"""The composition root: the one place that builds stores, blob stores, embedders, models and workers.

Interfaces (the Python API, CLI, REST, MCP) never construct a backend or an engine: they ask this
module for a :class:`~memcubed.kernel.Kernel` built from :class:`~memcubed.settings.Settings` and call
its operations. The language models a kernel may use are the operator's allow-list
(:class:`~memcubed.kernel.models.ModelRegistry`, from ``Settings.models``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from memcubed.backends.base import Embedder, StorageBackend
from memcubed.backends.embedders import make_embedder
from memcubed.backends.selection import open_backend
from memcubed.engines.scheduler import JobWorker
from memcubed.engines.scheduler.loop import SchedulerLoop
from memcubed.errors import ValidationError
from memcubed.kernel import ADMIN, Kernel, Progress
from memcubed.kernel.embedder_record import read_record
from memcubed.kernel.models import ModelRegistry
from memcubed.kernel.seal import open_seal
from memcubed.kernel.transfer import copy_store, require_empty
from memcubed.schemas.jobs import JobRecord
from memcubed.schemas.ops import MigrationReport
from memcubed.settings import Settings

__all__ = ["build_embedder", "build_kernel", "copy_between", "job_worker", "scheduler_loop"]


def build_embedder(spec: str | None = None, *, settings: Settings | None = None) -> Embedder | None:
    """The embedder ``spec`` names (``settings.embedder`` when None), loaded once per process.

    Raises:
        ConfigurationError: the spec is not understood or lacks a base URL.
    """
    settings = settings or Settings()
    return make_embedder(spec or settings.embedder, base_url=settings.embedder_base_url,
                         api_key=settings.embedder_api_key, query_runtime=settings.query_runtime)


def build_kernel(location: str | Path | None = None, *, settings: Settings | None = None,
                 embedder: str | Embedder | None = None, create: bool = True) -> Kernel:
    """Open (creating or migrating if needed) the store at ``location`` and return its kernel.

    Args:
        location: a SQLite file or a ``postgresql://`` DSN; ``settings.db`` when None.
        settings: everything else, including the model allow-list; read from ``MEMCUBED_*`` when None.
        embedder: an Embedder, or a spec. When None and ``settings`` does not set ``embedder`` either (nor
            ``MEMCUBED_EMBEDDER``), an existing store opens with the embedder it records and a new one gets
            ``settings.embedder`` (``kernel.embedder_record``).

    Raises:
        ConfigurationError: the embedder named differs from the store's, or the model settings cannot work.
        IntegrityError: the store's embedder record is damaged.
        DependencyMissing: a needed package is not installed.
        BackendUnavailable: the PostgreSQL server cannot be reached.
    """
    settings = settings or Settings()
    models = ModelRegistry.from_settings(settings)
    where = str(location if location is not None else settings.db)
    store, blobs = open_backend(where, settings=settings, create=create)
    try:
        if embedder is None or isinstance(embedder, str):
            embedder = build_embedder(embedder or _recorded_spec(store, settings), settings=settings)
        seal = open_seal(store, where, settings)
        return Kernel(store, blobs=blobs, embedder=embedder, settings=settings, models=models, seal=seal)
    except BaseException:
        store.close()
        raise


def _recorded_spec(store: StorageBackend, settings: Settings) -> str:
    """The embedder spec to open ``store`` with when the caller names none: an explicit setting, else the
    store's record, else (a new store) the default."""
    if "embedder" in settings.model_fields_set:
        return settings.embedder
    recorded = read_record(store)
    return recorded.spec if recorded is not None else settings.embedder


def job_worker(kernel: Kernel, *, poll_s: float = 0.5, kinds: Sequence[str] | None = None,
               report: Callable[[JobRecord, int, int], None] | None = None, gc: bool = False) -> JobWorker:
    """A (not yet started) worker that runs ``kernel``'s jobs (of ``kinds``, or every kind it knows).

    Args:
        gc: also collect unreferenced blobs every ``settings.blob_gc_interval_s`` while idle.

    Raises:
        ValidationError: a kind the kernel does not know.
    """
    known = kernel.job_kinds()
    unknown = sorted(set(kinds or ()) - set(known))
    if unknown:
        raise ValidationError(f"unknown job kinds {unknown}; known: {sorted(known)}", field="kinds")
    return JobWorker(kernel, poll_s=poll_s, kinds=kinds, report=report, gc_principal=ADMIN,
                     gc_every_s=kernel.settings.blob_gc_interval_s if gc else 0.0)


def scheduler_loop(kernel: Kernel) -> SchedulerLoop | None:
    """The (not yet started) scheduler loop of ``kernel`` when ``settings.scheduler_enabled``, else None.

    Any number of processes may run one on a store: a tick holds a lease in the store, so two never overlap.
    """
    if not kernel.settings.scheduler_enabled:
        return None
    return SchedulerLoop(kernel, interval_s=kernel.settings.scheduler_interval_s, principal=ADMIN)


def copy_between(source: str | Path, target: str | Path, *, settings: Settings | None = None,
                 progress: Progress | None = None) -> MigrationReport:
    """Copy the store at ``source`` into a new, empty store at ``target`` and verify the copy.

    Raises:
        StoreNotFound: there is no store at ``source``.
        Conflict: the target already holds data.
        ConfigurationError: the source's audit key is missing, or the target has another one configured.
        IntegrityError: a source blob no longer matches its hash.
        BackendUnavailable: a PostgreSQL server cannot be reached.
    """
    settings = settings or Settings()
    src, src_blobs = open_backend(source, settings=settings, create=False)
    try:
        seal = open_seal(src, str(source), settings, create=False)
        dst, dst_blobs = open_backend(target, settings=settings)
        try:
            require_empty(dst)
            # The chain is copied hash for hash, so the target keeps the source's key (saved where its key belongs).
            target_seal = seal if seal.key is None else open_seal(dst, str(target), settings, key=seal.key)
            return copy_store(src, src_blobs, dst, dst_blobs, progress=progress, seals=(seal, target_seal))
        finally:
            dst.close()
    finally:
        src.close()
