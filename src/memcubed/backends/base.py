"""The Protocols every backend implements; only the kernel calls them.

Backends do I/O and nothing else: versioning, rights decisions and audit
hashing live in the kernel, and serialization shared by backends lives in
``backends._common``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

from memcubed.backends.blobstore import BlobStore
from memcubed.backends.embedder import Embedder
from memcubed.backends.queue import JobQueue
from memcubed.backends.staging import VectorStaging
from memcubed.cube.model import CubeStats, DerivedRef, MemCube
from memcubed.schemas.events import Event, LoggedEvent
from memcubed.schemas.ops import AuditRecord, HistoryEntry, PrincipalPublic, SearchFilters
from memcubed.schemas.scheduler import DecisionRecord
from memcubed.schemas.server import ApiKeyRecord

__all__ = ["BlobStore", "Embedder", "IndexEntry", "ScopedCubes", "SearchScope", "StorageBackend", "Vector"]

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class SearchScope:
    """Who is searching where, with which filters; backends turn it into SQL conditions."""

    principal: str
    is_admin: bool
    namespace: str
    filters: SearchFilters = field(default_factory=SearchFilters)


@dataclass(frozen=True)
class IndexEntry:
    """What the indexes hold for a cube besides its text.

    Attributes:
        context: lexical context ranked below the text itself (event time, the preceding turn).
        vector: the text's embedding, or None when the store has no embedder.
        chunks: embeddings of the text's later windows when it is longer than the embedder's window
            (see ``engines.text.chunk``); a search scores the cube by its best vector.
    """

    context: str = ""
    vector: Vector | None = None
    chunks: tuple[Vector, ...] = ()


@dataclass(frozen=True)
class ScopedCubes:
    """Cubes read by id for a search (``StorageBackend.load_scoped``): what ``load_cubes`` returns, the ids among
    them ``scoped_ids`` selects, and (when asked for) ``adjacent_ids`` of them."""

    cubes: dict[str, MemCube]
    selected: set[str]
    adjacent: dict[str, tuple[str | None, str | None]]


class StorageBackend(JobQueue, VectorStaging, Protocol):
    """Persistent state of a memcubed store: principals, cubes, versions, ACL, audit, indexes.

    Every method that writes must be called inside ``transaction()``; an error
    inside it rolls back everything written in it.
    """

    def transaction(self) -> AbstractContextManager[None]:
        """Open a write transaction; nested calls become savepoints, an exception rolls back."""
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...

    # -- meta -------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """Return a store-level setting, or None when unset."""
        ...

    def set_meta(self, key: str, value: str) -> None:
        """Set a store-level setting, replacing any previous value."""
        ...

    def list_meta(self) -> dict[str, str]:
        """Return every store-level setting (used to copy a store)."""
        ...

    def configure_vectors(self, dim: int) -> None:
        """Create the vector index for ``dim``-dimensional embeddings if it does not exist."""
        ...

    # -- principals -------------------------------------------------------
    def get_principal(self, name: str) -> PrincipalPublic | None:
        """Return the principal called ``name``, or None."""
        ...

    def insert_principal(self, principal: PrincipalPublic) -> None:
        """Register a principal.

        Raises:
            AlreadyExists: the name is taken.
        """
        ...

    def list_principals(self) -> list[PrincipalPublic]:
        """Return every principal, by name."""
        ...

    def update_principal(self, principal: PrincipalPublic) -> None:
        """Store a principal's ``is_admin``, ``disabled``, ``deleted_at`` and ``trust``; a missing name changes
        nothing."""
        ...

    # -- API keys ---------------------------------------------------------
    def insert_api_key(self, key: ApiKeyRecord) -> None:
        """Store a new API key (its secret's hash only).

        Raises:
            AlreadyExists: the key id is taken.
        """
        ...

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """Return the key with ``key_id`` (revoked or not), or None."""
        ...

    def list_api_keys(self, principal: str | None = None) -> list[ApiKeyRecord]:
        """Return every key, or one principal's, oldest first."""
        ...

    def revoke_api_key(self, key_id: str, at: datetime) -> None:
        """Mark a key revoked at ``at``; revoking a revoked key keeps the first time."""
        ...

    # -- cubes ------------------------------------------------------------
    def load_cube(self, cube_id: str) -> MemCube | None:
        """Return the current state of a cube (ACL, tags and stats included), or None if it never existed."""
        ...

    def load_cubes(self, cube_ids: Sequence[str]) -> dict[str, MemCube]:
        """Return the current state of the existing cubes among ``cube_ids``, keyed by id."""
        ...

    def list_cubes(self, scope: SearchScope, *, limit: int, offset: int) -> list[MemCube]:
        """Return the cubes ``scope`` may read and selects (rights and filters in the query), newest first;
        an offset past the end gives an empty list."""
        ...

    def scoped_ids(self, cube_ids: Sequence[str], scope: SearchScope) -> set[str]:
        """Return those of ``cube_ids`` that ``scope`` may read and selects (the same rights and filters as
        ``lexical_search`` and ``vector_search``, in the query); unknown ids are left out."""
        ...

    def load_scoped(self, cube_ids: Sequence[str], scope: SearchScope, *, adjacent: bool = False) -> ScopedCubes:
        """``load_cubes`` of ``cube_ids`` with ``scoped_ids`` of them and, with ``adjacent``, ``adjacent_ids`` of
        them, in one query (a search's candidates and the neighbours of its best hits)."""
        ...

    def iter_cube_ids(self) -> Iterator[str]:
        """Yield the id of every cube ever stored, deleted and forgotten ones included, oldest first."""
        ...

    def load_index_entry(self, cube_id: str) -> IndexEntry | None:
        """Return the lexical context and vector indexed for a cube; None when it has neither (no such
        cube, or its payload was forgotten)."""
        ...

    def insert_cube(self, cube: MemCube, index: IndexEntry) -> None:
        """Insert a new cube with its index entries.

        Raises:
            AlreadyExists: a cube with this id exists.
        """
        ...

    def replace_cube(self, cube: MemCube, *, reindex: IndexEntry | None = None) -> None:
        """Overwrite a cube's current state; with ``reindex``, rewrite its text and vector index entries.

        Raises:
            NotFound: no cube has this id.
        """
        ...

    def preceding(self, namespace: str, source_uri: str, *, before: str | None = None) -> MemCube | None:
        """Return the newest live cube of ``source_uri`` in ``namespace`` stored before cube ``before``
        (or the newest of all when ``before`` is None); None when there is none."""
        ...

    def following(self, namespace: str, source_uri: str, *, after: str) -> MemCube | None:
        """Return the oldest live cube of ``source_uri`` in ``namespace`` stored after cube ``after``, or None."""
        ...

    def adjacent_ids(self, cube_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """For each of ``cube_ids`` that has a source: the ids of the live cubes of its source and namespace
        stored right before and right after it (``preceding`` and ``following`` in one query), None at an end."""
        ...

    def derived_from(self, source_id: str) -> list[str]:
        """Return the ids of every cube compiled or trained from any version of ``source_id``."""
        ...

    def add_derivations(self, cube_id: str, refs: Sequence[DerivedRef]) -> None:
        """Record that ``cube_id`` (a new version of it) is also derived from ``refs``; refs already recorded
        are skipped. Call inside a transaction.

        Raises:
            NotFound: no cube ``cube_id``.
        """
        ...

    def owner_usage(self, owner: str, *, chars: bool = True) -> tuple[int, int]:
        """Return (live cubes, stored characters) that ``owner`` owns: cubes not deleted, and the characters of
        their text and stored document (metadata, tags, source); with ``chars`` False the second is 0 (cheap)."""
        ...

    def blob_referenced(self, digest: str) -> bool:
        """Return whether any cube that is not forgotten still uses blob ``digest`` in its payload."""
        ...

    def referenced_digests(self) -> set[str]:
        """Return every blob digest a cube that is not forgotten still uses (the set ``blob_referenced`` tests
        one digest against), for garbage collection. Call inside ``transaction()`` for a stable answer."""
        ...

    def deleted_cube_ids(self, before: datetime) -> list[str]:
        """Return the ids of soft-deleted, not forgotten cubes last changed (deleted) before ``before``, in id
        order: what the deleted-cube retention purges. None: an empty list."""
        ...

    def set_context(self, cube_id: str, context: str) -> None:
        """Replace the lexical context indexed for a cube; a cube without a text index entry is left alone."""
        ...

    def insert_version(self, entry: HistoryEntry) -> None:
        """Append a version record.

        Raises:
            AlreadyExists: this (id, version) is already recorded.
        """
        ...

    def insert_versions(self, entries: Sequence[HistoryEntry]) -> None:
        """Append several version records at once (:meth:`insert_version`, batched).

        Raises:
            AlreadyExists: one of them, or a repeat within ``entries``, is already recorded; none is written.
        """
        ...

    def load_version(self, cube_id: str, version: int) -> HistoryEntry | None:
        """Return one version of a cube, or None."""
        ...

    def load_version_as_of(self, cube_id: str, at: datetime) -> HistoryEntry | None:
        """Return the newest version written at or before ``at``, or None."""
        ...

    def list_versions(self, cube_id: str, *, limit: int, offset: int) -> list[HistoryEntry]:
        """Return a cube's versions, oldest first."""
        ...

    def purge_payloads(self, cube_id: str) -> None:
        """Erase a cube's text, embeddings and index entries from its current row and every version."""
        ...

    def scrub(self) -> None:
        """Make data erased by committed writes unrecoverable from the storage files, as far as the backend can.

        Called after a ``forget`` commits; inside an open transaction it does nothing (the caller's
        commit has not happened yet). SQLite (with ``secure_delete`` and FTS5 secure-delete on every
        write) checkpoints the WAL into the main file and truncates it. PostgreSQL runs ``VACUUM`` on
        the tables that held the text (see ``PostgresStore.scrub`` for what that does not cover).
        """
        ...

    def record_access(self, stats: dict[str, CubeStats]) -> None:
        """Overwrite the access statistics of the given cubes (no version change)."""
        ...

    def load_stats(self, cube_ids: Sequence[str]) -> dict[str, CubeStats]:
        """Return the access statistics of the existing cubes among ``cube_ids``, keyed by id (cheaper than
        ``load_cubes``: what folding the event log needs)."""
        ...

    # -- scheduler decisions (issue 14) ----------------------------------------
    def insert_decision(self, decision: DecisionRecord, owners: Sequence[str]) -> int:
        """Append a scheduler decision (``seq`` ignored) and its targets' owners, in a transaction; return its seq."""
        ...

    def list_decisions(self, *, visible_to: str | None = None, after_seq: int = 0, limit: int = 100,
                       action: str | None = None, since_clock: float | None = None) -> list[DecisionRecord]:
        """Decisions after ``after_seq``, oldest first: all, or (``visible_to``) those acting for that principal
        or about their cubes only; ``since_clock``: decided at that event-log clock or later."""
        ...

    def derived_cube_ids(self) -> list[str]:
        """The ids of every active or stale activation and parameter cube, in id order."""
        ...

    # -- event log (outbox) -------------------------------------------------
    def append_events(self, events: Sequence[Event]) -> int | None:
        """Append ``events`` to the durable event log, in order, and return the seq of the last one (None
        when ``events`` is empty: nothing is written). Call inside ``transaction()``, so that they commit
        or roll back with the change they describe.

        Each gets the next ``seq``; seqs increase in commit order across every process sharing the
        store (appends happen under the store's write lock) and are never reused, even after a trim.
        """
        ...

    def read_events(self, *, after_seq: int = 0, limit: int = 1000, kinds: Sequence[str] | None = None
                    ) -> list[LoggedEvent]:
        """Return up to ``limit`` logged events with ``seq > after_seq``, oldest first, optionally only of
        ``kinds``; an empty list when there are none (or all were trimmed)."""
        ...

    def trim_events(self, *, through_seq: int, before: datetime) -> int:
        """Delete the logged events with ``seq <= through_seq`` that happened before ``before``; return how
        many were deleted. Call inside ``transaction()``."""
        ...

    # -- search -----------------------------------------------------------
    def lexical_search(self, match: str, scope: SearchScope, limit: int, *, context_weight: float
                       ) -> list[tuple[str, float]]:
        """Return ``(cube id, BM25 score)`` best first for an FTS ``match`` expression, the context
        column weighted ``context_weight`` against the text's 1.0; rights and filters applied in the
        query; a higher score is better. Scores are ``backends.bm25`` over the statistics of
        ``scope.namespace`` alone: what other namespaces hold never changes them."""
        ...

    def warm(self, namespace: str) -> None:
        """Load whatever in-process search indexes the store keeps (for ``namespace``) now, so that later
        searches neither wait for them nor take a slower path meanwhile; a no-op for a store without any."""
        ...

    def overlaps_searches(self, namespace: str) -> bool:
        """Whether a hybrid search of ``namespace`` should run its lexical and vector queries at once, in two
        threads: true where each waits on a server or on work that releases the GIL; false where both are short
        in-process work, which two threads only slow down by handing the GIL back and forth. Results are the
        same either way."""
        ...

    def term_counts(self, terms: Sequence[str], *, namespace: str) -> tuple[int, dict[str, int]]:
        """Return (documents in the text index, documents holding each term), over ``namespace`` only
        (so that what other namespaces hold never changes how a query of this one is built).

        A store without cheap term statistics, or one that ranks every match cheaply (so the caller
        need not prune common terms), returns ``(0, {})``; counts may be approximate.
        """
        ...

    def alias_terms(self, terms: Sequence[str], scope: SearchScope, limit: int) -> list[tuple[str, str, str]]:
        """Return ``(term, alias, cube id)`` for the entity aliases of ``terms`` (lower-case words) learnt from
        the cubes ``scope`` may read and selects (rights and filters in the query, like ``lexical_search``),
        at most ``limit`` rows, ordered by term, alias and cube; ``[]`` when none is known."""
        ...

    def vector_search(self, vector: Vector, scope: SearchScope, limit: int) -> list[tuple[str, float]]:
        """Return ``(cube id, cosine similarity)`` best first, rights and filters applied in the query."""
        ...

    # -- audit ------------------------------------------------------------
    def audit_head(self) -> tuple[int, str] | None:
        """Return ``(seq, hash)`` of the newest audit record, or None when the log is empty."""
        ...

    def append_audit(self, record: AuditRecord) -> None:
        """Append an audit record (its seq must follow the head)."""
        ...

    def append_audits(self, records: Sequence[AuditRecord]) -> None:
        """Append audit records in seq order (:meth:`append_audit`, batched)."""
        ...

    def iter_audit(self, *, cube_id: str | None = None, after_seq: int = 0) -> Iterator[AuditRecord]:
        """Yield audit records in seq order, optionally for one cube only.

        Raises:
            IntegrityError: a stored record can no longer be read (it was edited outside memcubed).
        """
        ...
