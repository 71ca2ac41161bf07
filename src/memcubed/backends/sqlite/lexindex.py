"""An in-process BM25 index over the full-text table: lexical candidates in about a millisecond at 100k.

FTS5 ranks a query by calling ``bm25()`` on every matching row (~0.5 µs a row); at 100k LoCoMo
cubes a question matches ~17k rows, which made lexical search cost ~12 ms. This index holds the
same postings in numpy (per term: documents and how often the term occurs in each column) and
scores every match in one vectorised pass. It is derived from FTS5 itself, so nothing about
tokenising is reimplemented: the initial load reads FTS5's own index (``fts5vocab``), and new or
changed rows (and query words) are tokenised by a temporary FTS5 table with the same tokenizer.
Scores are ``backends.bm25`` over the searched namespace's statistics (IDF, document count and
mean length of that namespace alone, so other tenants' rows never move them): FTS5's ``bm25()``
over the namespace's rows, same document lengths (tokens of all columns), k1, b and column
weights; a test compares them.

Rights are applied before ranking: only cubes of the namespace that the principal owns or was
granted (read from the ``acl`` table in the same call) are ranked. The store then checks rights
and filters exactly in SQL on the best candidates.

The index follows the store, whichever process writes: every change to a full-text row appends
its seq to ``fts_log`` in the same transaction, and each search first replays the entries it has
not seen. Changed rows go to a delta beside the loaded postings; once the delta or the removed
rows outgrow a quarter of the index, it is reloaded from FTS5.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from memcubed.backends.bm25 import NamespaceStats, term_scores
from memcubed.backends.sqlite.changelog import log_span
from memcubed.backends.sqlite.fts5 import TOKENIZER, Query, plain_terms, tokenize

__all__ = ["TOKENIZER", "LexicalIndex", "plain_terms"]


_log = logging.getLogger(__name__)
_RELOAD_SHARE = 0.25  # reload from FTS5 once the delta or the removed rows reach this share
_STEM_CACHE = 50_000  # query words whose tokens are remembered


@dataclass
class _Postings:
    """One term's documents (slots) and its occurrences in the text and context columns."""

    slots: list[int] = field(default_factory=list)
    text: list[float] = field(default_factory=list)
    context: list[float] = field(default_factory=list)


@dataclass
class _Loaded:
    """The postings read from FTS5 at load time, term by term (CSR)."""

    starts: npt.NDArray[np.int64]
    slots: npt.NDArray[np.int32]
    text: npt.NDArray[np.float64]
    context: npt.NDArray[np.float64]


class LexicalIndex:
    """BM25 over every row of ``cube_fts``, scored in numpy, with the rights of one principal applied.

    Args:
        background: load (and reload) in a background thread; until it is ready, ``search``
            returns None and the store ranks in FTS5 (the same results: a one-shot process never
            waits for the load). False loads in the first search.
    """

    def __init__(self, *, background: bool = True) -> None:
        self._lock = threading.Lock()
        self._background = background
        self._loader: threading.Thread | None = None
        self._spawning = threading.Lock()
        self._closed = False
        self._ready = False
        self._stems: dict[str, tuple[str, ...]] = {}
        self._reset()

    def _reset(self) -> None:
        self._seen = 0  # fts_log id replayed up to
        self._terms: dict[str, int] = {}
        self._loaded = _Loaded(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0), np.zeros(0))
        self._delta: dict[int, _Postings] = {}
        self._delta_size = 0
        self._slot_of: dict[int, int] = {}
        self._seqs = np.zeros(0, np.int64)
        self._namespaces = np.zeros(0, np.int32)
        self._owners = np.zeros(0, np.int32)
        self._lengths = np.zeros(0, np.float64)
        self._alive = np.zeros(0, bool)
        self._size = 0  # slots in use
        self._removed = 0
        self._ns_docs: dict[int, int] = {}  # namespace → live rows with a token
        self._ns_tokens: dict[int, float] = {}  # namespace → tokens of those rows
        self._names: dict[str, int] = {}  # namespace and owner names → small ints

    # -- search ---------------------------------------------------------------
    def search(self, query: Query, words: Sequence[str], *, namespace: str, principal: str, is_admin: bool,
               context_weight: float, depth: int) -> tuple[list[tuple[int, float]], bool] | None:
        """Rank the rows of ``namespace`` matching any of ``words`` (each an FTS5 phrase of one token) by BM25
        over that namespace's statistics.

        Returns up to ``depth`` (seq, score) pairs, best first (ties by seq), among rows of
        ``namespace`` the principal owns or was granted, and whether more rows matched than were
        returned; or None when the index is not loaded yet or a word is not a single token (FTS5
        would read it as a phrase).
        """
        if not self._ready and not self._start(query):
            return None
        with self._lock:
            if not self._ready or not self._refresh(query):
                return None
            stems: list[str] = []
            for tokens in self._stem(query, words):
                if len(tokens) != 1:
                    return None
                stems.append(tokens[0])
            space = self._names.get(namespace, -1)
            stats = NamespaceStats(self._ns_docs.get(space, 0), self._ns_tokens.get(space, 0.0))
            if stats.documents == 0:
                return [], False
            scores = np.zeros(self._size, np.float64)
            matched = np.zeros(self._size, bool)
            for stem in stems:
                term = self._terms.get(stem)
                if term is None:
                    continue
                slots, text, context = self._postings(term)
                mine = self._namespaces[slots] == space
                slots, text, context = slots[mine], text[mine], context[mine]
                scores[slots] += term_scores(text, context, self._lengths[slots], df=int(slots.size), stats=stats,
                                             context_weight=context_weight)
                matched[slots] = True
            found = np.flatnonzero(matched)
            if not is_admin:
                found = found[self._readable(query, found, principal)]
            eligible = found.size
            if found.size > depth:
                cut = np.partition(scores[found], found.size - depth)[found.size - depth]
                found = found[scores[found] >= cut]
            best = found[np.lexsort((self._seqs[found], -scores[found]))][:depth]
            # tolist: the same Python ints and floats as int() and float() of each numpy scalar, at C speed.
            return list(zip(self._seqs[best].tolist(), scores[best].tolist(), strict=True)), eligible > depth

    def _readable(self, query: Query, slots: npt.NDArray[np.int64], principal: str) -> npt.NDArray[np.bool_]:
        readable: npt.NDArray[np.bool_] = np.asarray(self._owners[slots] == self._names.get(principal, -1), bool)
        granted = [row[0] for row in query("SELECT cube_seq FROM acl WHERE principal = ?", (principal,))]
        if granted:
            readable |= np.isin(self._seqs[slots], np.asarray(granted, dtype=np.int64))
        return readable

    def _postings(self, term: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """A term's live postings: slots, text and context occurrences."""
        loaded = self._loaded
        slots: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        text = context = np.zeros(0)
        if term + 1 < loaded.starts.size:
            start, end = loaded.starts[term], loaded.starts[term + 1]
            slots, text, context = loaded.slots[start:end].astype(np.int64), loaded.text[start:end], \
                loaded.context[start:end]
        extra = self._delta.get(term)
        if extra is not None:
            slots = np.concatenate([slots, np.asarray(extra.slots, np.int64)])
            text = np.concatenate([text, np.asarray(extra.text)])
            context = np.concatenate([context, np.asarray(extra.context)])
        live = self._alive[slots]
        return slots[live], text[live], context[live]

    def _stem(self, query: Query, words: Sequence[str]) -> list[tuple[str, ...]]:
        """Each word's tokens (words not seen before are tokenised together, in one call)."""
        new = [word for word in dict.fromkeys(words) if word not in self._stems]
        if new:
            tokens: list[list[str]] = [[] for _ in new]
            for index, term, _ in tokenize(query, [(word, "") for word in new]):
                tokens[index].append(term)
            if len(self._stems) + len(new) > _STEM_CACHE:
                self._stems.clear()
            self._stems.update({word: tuple(found) for word, found in zip(new, tokens, strict=True)})
        return [self._stems[word] for word in words]

    # -- following the store ------------------------------------------------------
    def load(self, query: Query) -> None:
        """Load (or reload) every row from FTS5 now, in the calling thread."""
        with self._lock:
            self._load_now(query)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background load to finish; return whether the index is ready."""
        loader = self._loader
        if loader is not None:
            loader.join(timeout)
        return self._ready

    def close(self, interrupt: Callable[[], None]) -> None:
        """Stop a background load (``interrupt`` aborts the SQL it runs) and wait for its thread to end:
        the store must not close connections under it."""
        with self._spawning:
            self._closed = True
        loader = self._loader
        while loader is not None and loader.is_alive():
            interrupt()
            loader.join(0.05)

    def _start(self, query: Query) -> bool:
        """Begin loading: at once in the foreground (True), else in a background thread (False)."""
        if not self._background:
            self.load(query)
            return True
        self._spawn(query)
        return False

    def _spawn(self, query: Query) -> None:
        """Start a background load unless one is running (it takes the index lock once that is free)."""
        with self._spawning:
            if not self._closed and (self._loader is None or not self._loader.is_alive()):
                self._loader = threading.Thread(target=self._load_quietly, args=(query,), daemon=True,
                                                name="memcubed-lexical-index")
                self._loader.start()

    def _load_quietly(self, query: Query) -> None:
        try:
            self.load(query)
        except Exception:  # the store closed, or the file is busy: FTS5 keeps answering; a later search retries
            if not self._closed:
                    _log.warning("the in-process lexical index could not load; FTS5 ranks meanwhile", exc_info=True)

    def _load_now(self, query: Query) -> None:
        self._ready = False
        self._reset()
        self._load(query, int(query("SELECT coalesce(max(id), 0) FROM fts_log", ())[0][0]))
        self._ready = True

    def _refresh(self, query: Query) -> bool:
        """Apply the rows added, changed or removed since the last search, by any process; False when so
        much changed that a reload began instead (the caller holds the lock)."""
        head, low = log_span(query, "fts_log")
        if head == self._seen:
            return True
        if low > self._seen + 1:  # the entries after ours were trimmed: what changed is unknown
            return self._reload(query)
        changed = query("SELECT id, seq FROM fts_log WHERE id > ?", (self._seen,))
        touched = sorted({int(r[1]) for r in changed})
        if len(touched) > _RELOAD_SHARE * self._size:
            return self._reload(query)
        self._seen = max(int(r[0]) for r in changed)
        for seq in touched:
            self._remove(seq)
        rows = query("SELECT f.rowid, f.text, f.context, c.namespace, c.owner FROM json_each(?) AS j"
                     " CROSS JOIN cube_fts f ON f.rowid = j.value JOIN cubes c ON c.seq = f.rowid",
                     (json.dumps(touched),))
        if rows:
            self._add(rows, tokenize(query, [(r[1] or "", r[2] or "") for r in rows]))
        if self._removed > _RELOAD_SHARE * self._size or self._delta_size > _RELOAD_SHARE * self._loaded.slots.size:
            return self._reload(query)
        return True

    def _reload(self, query: Query) -> bool:
        if not self._background:
            self._load_now(query)
            return True
        self._ready = False
        self._spawn(query)
        return False

    def _load(self, query: Query, head: int) -> None:
        """Read every row's postings from FTS5's own index (one grouped pass over ``fts5vocab``)."""
        query("CREATE VIRTUAL TABLE IF NOT EXISTS temp.cube_fts_terms USING fts5vocab(main, cube_fts, instance)", ())
        grouped = query("SELECT term, count(*), group_concat(doc * 2 + (col = 'context'), ' ')"
                        " FROM temp.cube_fts_terms GROUP BY term", ())
        docs = {int(r[0]): (str(r[1]), str(r[2])) for r in query("SELECT seq, namespace, owner FROM cubes", ())}
        self._seen = head
        if not grouped:
            return
        counts = np.fromiter((r[1] for r in grouped), dtype=np.int64, count=len(grouped))
        # Instances come ordered by term, then document, then column: (term, doc*2+col) runs are postings.
        keys = np.fromstring(" ".join(r[2] for r in grouped), dtype=np.int64, sep=" ")
        term_of = np.repeat(np.arange(len(grouped), dtype=np.int64), counts)
        starts = np.flatnonzero(np.r_[True, (np.diff(keys) != 0) | (np.diff(term_of) != 0)])
        occurrences = np.diff(np.r_[starts, keys.size])
        pair_term, pair_doc, pair_col = term_of[starts], keys[starts] // 2, keys[starts] % 2
        posting = np.flatnonzero(np.r_[True, (np.diff(pair_doc) != 0) | (np.diff(pair_term) != 0)])
        which = np.cumsum(np.r_[False, (np.diff(pair_doc) != 0) | (np.diff(pair_term) != 0)])
        text = np.bincount(which, weights=occurrences * (pair_col == 0), minlength=posting.size).astype(np.float64)
        context = np.bincount(which, weights=occurrences * (pair_col == 1), minlength=posting.size).astype(np.float64)
        seqs, slots = np.unique(pair_doc[posting], return_inverse=True)
        self._grow(seqs.size)
        for slot, seq in enumerate(seqs.tolist()):
            namespace, owner = docs.get(seq, ("", ""))
            self._slot_of[seq] = slot
            self._namespaces[slot], self._owners[slot] = self._name(namespace), self._name(owner)
        self._seqs[: seqs.size] = seqs
        self._lengths[: seqs.size] = np.bincount(slots, weights=text + context, minlength=seqs.size)
        self._alive[: seqs.size] = True
        self._size = int(seqs.size)
        counted = self._lengths[: self._size] > 0
        spaces = self._namespaces[: self._size][counted]
        docs_of = np.bincount(spaces, minlength=len(self._names))
        tokens_of = np.bincount(spaces, weights=self._lengths[: self._size][counted], minlength=len(self._names))
        self._ns_docs = {i: int(n) for i, n in enumerate(docs_of) if n}
        self._ns_tokens = {i: float(tokens_of[i]) for i in self._ns_docs}
        self._terms = {str(r[0]): i for i, r in enumerate(grouped)}
        per_term = np.bincount(pair_term[posting], minlength=len(grouped))
        self._loaded = _Loaded(np.r_[0, np.cumsum(per_term)].astype(np.int64), slots.astype(np.int32), text, context)

    def _add(self, rows: list[Any], instances: list[tuple[int, str, int]]) -> None:
        """Add tokenised rows (``instances``: row index, term, column) as new slots."""
        per_row: list[dict[str, list[float]]] = [{} for _ in rows]
        for index, term, column in instances:
            per_row[index].setdefault(term, [0.0, 0.0])[column] += 1.0
        self._grow(self._size + len(rows))
        for row, terms in zip(rows, per_row, strict=True):
            slot, seq = self._size, int(row[0])
            self._size += 1
            self._slot_of[seq] = slot
            self._seqs[slot], self._alive[slot] = seq, True
            self._namespaces[slot], self._owners[slot] = self._name(str(row[3])), self._name(str(row[4]))
            self._lengths[slot] = sum(text + context for text, context in terms.values())
            self._count(slot, 1)
            for term, (text, context) in terms.items():
                postings = self._delta.setdefault(self._terms.setdefault(term, len(self._terms)), _Postings())
                postings.slots.append(slot)
                postings.text.append(text)
                postings.context.append(context)
            self._delta_size += len(terms)

    def _remove(self, seq: int) -> None:
        slot = self._slot_of.pop(seq, None)
        if slot is None:
            return
        self._alive[slot] = False
        self._removed += 1
        self._count(slot, -1)

    def _grow(self, size: int) -> None:
        if size <= self._seqs.size:
            return
        capacity = max(size, 2 * self._seqs.size, 1024)
        for name in ("_seqs", "_namespaces", "_owners", "_lengths", "_alive"):
            old = getattr(self, name)
            new = np.zeros(capacity, old.dtype)
            new[: old.size] = old
            setattr(self, name, new)

    def _name(self, name: str) -> int:
        return self._names.setdefault(name, len(self._names))

    def _count(self, slot: int, sign: int) -> None:
        """Add (1) or remove (-1) a slot's row in its namespace's statistics (rows without tokens are none)."""
        length = float(self._lengths[slot])
        if length > 0:
            space = int(self._namespaces[slot])
            self._ns_docs[space] = self._ns_docs.get(space, 0) + sign
            self._ns_tokens[space] = self._ns_tokens.get(space, 0.0) + sign * length

