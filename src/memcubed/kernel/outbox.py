"""Reads never write on the request path: access events are buffered, logged and folded in the background.

Every write appends its events to the store's durable event log (the outbox) in its own transaction
(``KernelBase._write``). A read only appends its access events to an in-process buffer (``EventWriter``);
a background thread appends the buffer to the same log in batches and, in that same transaction, folds
every access event past the stats cursor into the cubes' statistics (count, last access, hotness) and
moves the cursor. Fold and cursor commit together, so a crash cannot count an event twice, and the
store's write lock makes two processes folding one store take turns: each folds only what the other has
not. The scheduler reads the same log (``StorageBackend.read_events``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from memcubed.backends.base import StorageBackend
from memcubed.errors import ValidationError
from memcubed.kernel.stats import touched_at
from memcubed.schemas.events import ACCESS, Event
from memcubed.settings import Settings

__all__ = ["SCHEDULER_CURSOR", "STATS_CURSOR", "EventWriter", "fold_access"]

_log = logging.getLogger(__name__)

STATS_CURSOR = "events_stats_cursor"
"""Store meta key: the seq of the last access event folded into cube stats."""

SCHEDULER_CURSOR = "events_scheduler_cursor"
"""Store meta key: the seq of the last access event the scheduler folded (set once a scheduler has run);
trimming keeps every event past it."""

_MAX_BUFFERED = 100_000  # beyond this (the store has been unreachable for long) the oldest accesses are dropped
_FOLD_MAX = 10_000  # logged events folded per transaction: a long backlog is folded in several
_TRIM_EVERY_S = 60.0


def fold_access(store: StorageBackend, *, half_life_s: float, fresh: Sequence[Event] = ()) -> int:
    """Append the ``fresh`` access events to the log, then fold every access event past the stats cursor
    (the log's backlog and ``fresh``) into cube stats and move the cursor past them.

    Call inside ``store.transaction()``: the log, the stats and the cursor commit together. ``fresh`` is
    folded from memory, not read back; a backlog of ``_FOLD_MAX`` or more is folded a page at a time
    (``fresh`` then waits in the log for the next call). Events of cubes that no longer exist are
    skipped; the cursor still moves past them. Returns the events folded.
    """
    if any(e.kind != ACCESS for e in fresh):
        raise ValidationError("only access events are folded", field="fresh")
    after = int(store.get_meta(STATS_CURSOR) or 0)
    backlog = store.read_events(after_seq=after, limit=_FOLD_MAX, kinds=(ACCESS,))
    last = store.append_events(fresh)
    events = [logged.event for logged in backlog]
    if backlog:
        after = backlog[-1].seq
    if len(backlog) < _FOLD_MAX and last is not None:
        # Nothing was appended between the read and this append (the write lock): every access event up
        # to `last` is in `events`.
        events, after = [*events, *fresh], last
    if not events:
        return 0
    times: dict[str, list[datetime]] = {}
    for event in events:
        if event.cube_id is not None:
            times.setdefault(event.cube_id, []).append(event.at)
    stats = store.load_stats(list(times))
    store.record_access({cid: touched_at(old, times[cid], half_life_s) for cid, old in stats.items()})
    store.set_meta(STATS_CURSOR, str(after))
    return len(events)


class EventWriter:
    """The in-process access buffer and its background writer (see the module docstring); thread-safe.

    Args:
        store: where the log and the stats live.
        settings: ``events_flush_interval_s``, ``events_flush_batch``, ``events_retention_s`` and
            ``hotness_half_life_s``.
    """

    def __init__(self, store: StorageBackend, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self._buffer: list[Event] = []
        self._lock = threading.Lock()  # guards the buffer
        self._flushing = threading.Lock()  # one flush at a time, so flush() sees every earlier record committed
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_trim = 0.0
        self.dropped = 0
        """Access events dropped because the buffer was full (the store was unreachable for long)."""

    @property
    def pending(self) -> int:
        """Access events recorded but not yet written to the log."""
        with self._lock:
            return len(self._buffer)

    def record(self, events: Sequence[Event]) -> None:
        """Buffer ``events`` for the background writer; never touches the store."""
        with self._lock:
            if self._stop.is_set():
                return  # closed with its kernel: the store is gone too
            self._buffer.extend(events)
            self._cap()
            full = len(self._buffer) >= self._settings.events_flush_batch
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="memcubed-events", daemon=True)
                self._thread.start()
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write every buffered event to the log and fold the whole log into cube stats, now.

        Returns the access events folded (by this call; another process may have folded some first).

        Raises:
            StorageError: the store refused the write (the events stay buffered).
            BackendUnavailable: the store is busy or unreachable (the events stay buffered).
        """
        with self._flushing:
            folded = self._cycle(self._take())
            total = folded
            while folded >= _FOLD_MAX:
                folded = self._cycle([])
                total += folded
            return total

    def close(self) -> None:
        """Stop the background writer and flush what is left; a failed flush is logged, not raised.
        Closing again does nothing."""
        with self._lock:
            if self._stop.is_set():
                return
            self._stop.set()
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()
        try:
            self.flush()
        except Exception:  # closing must release the store even when it is unreachable
            _log.warning("%d access events could not be written at close", self.pending, exc_info=True)

    # -- the background writer ---------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._settings.events_flush_interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return  # close() flushes in its own thread
            try:
                with self._flushing:
                    batch = self._take()
                    if batch:
                        self._cycle(batch)
            except Exception:  # keep running: the batch was put back and the next tick retries
                _log.warning("writing access events failed; retrying", exc_info=True)

    def _cycle(self, batch: list[Event]) -> int:
        """One transaction: append ``batch`` to the log, fold what is unfolded, trim what is old."""
        store = self._store
        if not batch and not self._unfolded():
            return 0
        try:
            with store.transaction():
                folded = fold_access(store, half_life_s=self._settings.hotness_half_life_s, fresh=batch)
                self._trim()
        except BaseException:
            self._requeue(batch)
            raise
        return folded

    def _unfolded(self) -> bool:
        after = int(self._store.get_meta(STATS_CURSOR) or 0)
        return bool(self._store.read_events(after_seq=after, limit=1, kinds=(ACCESS,)))

    def _trim(self) -> None:
        now = time.monotonic()
        if now - self._last_trim < _TRIM_EVERY_S:
            return
        self._last_trim = now
        cursor = int(self._store.get_meta(STATS_CURSOR) or 0)
        scheduler = self._store.get_meta(SCHEDULER_CURSOR)
        if scheduler is not None:  # a scheduler has run: keep what it has not folded yet
            cursor = min(cursor, int(scheduler))
        before = datetime.now(UTC) - timedelta(seconds=self._settings.events_retention_s)
        self._store.trim_events(through_seq=cursor, before=before)

    # -- the buffer --------------------------------------------------------------
    def _take(self) -> list[Event]:
        with self._lock:
            batch, self._buffer = self._buffer, []
        return batch

    def _requeue(self, batch: list[Event]) -> None:
        if batch:
            with self._lock:
                self._buffer[:0] = batch
                self._cap()

    def _cap(self) -> None:
        """Drop the oldest events beyond the buffer's bound (hold ``_lock``)."""
        excess = len(self._buffer) - _MAX_BUFFERED
        if excess > 0:
            del self._buffer[:excess]
            self.dropped += excess
            _log.warning("access event buffer full: dropped %d events", excess)
