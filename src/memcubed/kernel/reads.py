"""Kernel operations that read cubes: get, get_version, history, search."""

from __future__ import annotations

import time
from concurrent.futures import wait
from datetime import datetime
from typing import Any

from memcubed.backends.base import ScopedCubes, SearchScope
from memcubed.backends.embedders.querycache import query_vector
from memcubed.cube.model import CubeKind, MemCube, Right
from memcubed.engines.text.chronology import Ordinal, asks_when, ordinal_cue, rank_by_time
from memcubed.engines.text.expand import query_names
from memcubed.engines.text.route import Route, route
from memcubed.engines.text.session import aggregate, cover, fill, spread
from memcubed.engines.text.speaker import ASKER_SPEAKERS, focus, speaker_of, without_names, without_speakers
from memcubed.engines.text.when import time_window
from memcubed.errors import (
    ConfigurationError,
    NotFound,
    ValidationError,
)
from memcubed.kernel import limits
from memcubed.kernel.retrieve import Ranking, RetrieveOps
from memcubed.kernel.validation import parse
from memcubed.schemas.ops import (
    HistoryEntry,
    PrincipalPublic,
    SearchHit,
    SearchMode,
    SearchRequest,
    SearchResult,
)

__all__ = ["ReadOps", "holds_at"]


class ReadOps(RetrieveOps):
    """The reading system calls; each successful read counts as an access."""

    def get(self, cube_id: str, *, principal: str, as_of: datetime | None = None,
            include_deleted: bool = False, true_at: datetime | None = None) -> MemCube:
        """Return a cube's current state, or its state at ``as_of`` (record time: as known then); counts as
        an access. With ``true_at`` (event time) the cube must hold then (see ``holds_at``).

        Raises:
            NotFound: no such cube, it is deleted, it did not exist yet at ``as_of``, or it did not hold
                at ``true_at``.
            AccessDenied: the principal lacks read (rights are always the current ones), or, for a plaintext
                cube derived from others, read on every source.
        """
        actor = self._actor(principal)
        for name, value in (("as_of", as_of), ("true_at", true_at)):
            if value is not None and value.tzinfo is None:
                raise ValidationError(f"{name} must carry a timezone", field=name)
        cube = self._load(cube_id, actor, Right.READ, include_deleted=include_deleted or as_of is not None)
        if cube.kind is CubeKind.PLAINTEXT:
            self._require_sources(cube, actor)  # an extracted fact's text is its sources' content
        found = cube
        if as_of is not None:
            entry = self.store.load_version_as_of(cube.id, as_of)
            if entry is None:
                raise NotFound(f"cube {cube_id} did not exist at {as_of.isoformat()}", id=cube_id)
            found = entry.cube
        if true_at is not None and not holds_at(found, true_at):
            raise NotFound(f"cube {cube_id} did not hold at {true_at.isoformat()}", id=cube_id)
        # Count the access only once the read succeeded: a rejected read must leave the store unchanged.
        self._touch([cube], actor)
        return self._present(found, actor)

    def get_version(self, cube_id: str, version: int, *, principal: str) -> HistoryEntry:
        """Return version ``version`` of a cube as it was written.

        Raises:
            NotFound: no such version.
        """
        actor = self._actor(principal)
        cube = self._load(cube_id, actor, Right.READ, include_deleted=True)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValidationError(f"version must be a positive integer, got {version!r}", field="version")
        entry = self.store.load_version(cube.id, version)
        if entry is None:
            raise NotFound(f"cube {cube_id} has no version {version}", id=cube_id, version=version)
        return entry.model_copy(update={"cube": self._present(entry.cube, actor)})

    def history(self, cube_id: str, *, principal: str, limit: int = 100, offset: int = 0) -> list[HistoryEntry]:
        """Return a cube's versions, oldest first (paginated)."""
        actor = self._actor(principal)
        cube = self._load(cube_id, actor, Right.READ, include_deleted=True)
        if not _is_int(limit) or not _is_int(offset) or limit < 1 or offset < 0:
            raise ValidationError("limit must be an integer >= 1 and offset an integer >= 0", field="limit")
        limits.check_page(self.settings, limit)
        entries = self.store.list_versions(cube.id, limit=limit, offset=offset)
        return [e.model_copy(update={"cube": self._present(e.cube, actor)}) for e in entries]

    def _match(self, query: str, namespace: str) -> str | None:
        """The full-text expression for ``query``, pruned of common terms by the namespace's statistics."""
        terms = self.text.query_terms(query)
        if len(terms) < 2:
            return self.text.build_match(query)
        total, counts = self.store.term_counts(terms, namespace=namespace)
        return self.text.build_match(query, counts=counts, total=total)

    def search(self, request: SearchRequest | dict[str, Any], *, principal: str) -> SearchResult:
        """Hybrid (or single-signal) retrieval over the cubes the principal may read.

        Rights and filters are applied inside the index queries. Each hit says
        which signal found it, with rank and raw score.
        """
        started = time.perf_counter()
        actor = self._actor(principal)
        req = parse(SearchRequest, request)
        hits, embed_ms, index_ms, explanation = self._find(req, actor)
        self._touch([hit.cube for hit in hits], actor)
        return SearchResult(hits=hits, embed_ms=embed_ms, index_ms=index_ms,
                            total_ms=(time.perf_counter() - started) * 1000, explanation=explanation)

    def _find(self, req: SearchRequest, actor: PrincipalPublic) -> tuple[list[SearchHit], float, float, list[str]]:
        """The hits of ``req`` for ``actor``, the embed and index milliseconds and the stages that ran (one line
        each), counting no access (the kernel's own lookups, such as resolving a new fact against known ones,
        are no reads by the user)."""
        limits.check_k(self.settings, req.k)
        if req.mode is SearchMode.VECTOR and self.embedder is None:
            raise ConfigurationError("vector search needs an embedder; this store has none", field="mode")
        scope = SearchScope(principal=actor.name, is_admin=actor.is_admin, namespace=req.namespace,
                            filters=req.filters)
        started = time.perf_counter()
        plan = route(req.query)
        # ``topic_hop_only``: a question that asks for one thing keeps the whole question's vector alone.
        strip = not (self.text.config.topic_hop_only and not self._routed(plan, "hop"))
        lexical, dense, embed_ms, spoken = self._first_stage(req, scope, actor, strip=strip)
        topic: Ranking = []
        if spoken and self.text.config.strip_speakers != "replace":  # the question's vector is kept beside it
            dense, topic = self._full_dense(req, scope), dense
            topic = self._topic_view(topic, lexical, dense, spoken, actor)
        window = time_window(req.query, req.question_date)
        cue = ordinal_cue(req.query) if self.text.config.ordinal_boost else None
        when = bool(self.text.config.dated_boost) and asks_when(req.query)
        sessions = self._session_stage(req, plan)
        speaker, boost = self._speaker_stage(req, plan)
        asker = self._asker_stage(req, plan)
        # A query naming or asking a time (or the first or latest), or one whose hits are spread over sessions,
        # reorders a deeper candidate list.
        exchanged = req.mode is SearchMode.HYBRID and self.text.config.exchange_weight > 0
        deep = bool(window or cue or when or sessions or speaker or asker or exchanged)
        depth = max(_WHEN_DEPTH, self.text.config.session_depth) if sessions else _WHEN_DEPTH
        fused, explanation = self._fused(req, scope, lexical, dense, req.k * depth if deep else req.k,
                                         actor, plan, topic)
        explanation += [f"dense: embedded without the speakers' names {', '.join(spoken)}"] if spoken else []
        index_ms = (time.perf_counter() - started) * 1000 - embed_ms
        # With exchange scoring on, the candidates' adjacent turns (and whether the scope selects each) come
        # in the same query as the candidates.
        ids = [hit.cube_id for hit in fused]
        loaded = (self.store.load_scoped(ids, scope, adjacent=True) if exchanged
                  else ScopedCubes(self.store.load_cubes(ids), set(), {}))
        cubes = loaded.cubes
        # A derived memory's text is its sources' content: it is found only by who may read them all.
        hits = [SearchHit(cube=self._present(cubes[h.cube_id], actor), score=h.score, signals=h.signals)
                for h in fused if h.cube_id in cubes and self._readable_derivation(cubes[h.cube_id], actor)]
        if window is not None or cue is not None or when:
            hits = rank_by_time(hits, window, cue, self.text.config, when=when)
            explanation.append(_time_note(window, cue, when))
        if speaker:
            hits = focus(hits, speaker, boost)
            explanation.append(self._note(plan, "speaker"))
        if asker:
            hits = focus(hits, {*ASKER_SPEAKERS, actor.name}, self.text.config.asker_boost)
            explanation.append(asker)
        if exchanged and hits:
            hits = self._exchange(hits, scope, actor, loaded)
            explanation.append("exchange: adjacent turns of the best hits share their scores")
        if sessions:  # last, so that a counting question's spread over sessions is not undone by neighbours
            hits = self._by_session(hits, req.k)
            explanation.append(sessions)
        hits = self._with_neighbours(hits[: req.k], req, scope, actor)
        if req.filters.as_known_at is not None:
            hits = self._as_known(hits, req.filters.as_known_at, req.filters.true_at, actor)
        return hits, embed_ms, index_ms, explanation

    def _first_stage(self, req: SearchRequest, scope: SearchScope, actor: PrincipalPublic, *, strip: bool = True
                     ) -> tuple[Ranking, Ranking, float, list[str]]:
        """The lexical and dense rankings of ``req``, the embedding milliseconds, and the speakers' names the
        dense query left out (else ``[]``; always with ``strip`` False).

        A hybrid query naming someone first ranks lexically; the names that open one of its best
        ``_SPEAKER_PROBE`` hits the searcher may use (``"Melanie: …"``) are left out of the embedded text
        (``speaker.without_speakers``; ``TextConfig.strip_speakers``). Otherwise, where the store overlaps its
        searches, the lexical query runs while the query embeds and then beside the vector query; the embedding
        milliseconds are the embedding's own wall time either way."""
        cfg = self.text.config
        limit, dense_limit = max(req.k, cfg.candidates), max(req.k, cfg.vector_candidates)
        weight = cfg.context_weight
        match = self._match(req.query, req.namespace) if req.mode is not SearchMode.VECTOR else None
        stripping = strip and cfg.strip_speakers != "off" and req.mode is SearchMode.HYBRID
        names = query_names(req.query) if stripping else []
        if req.mode is SearchMode.LEXICAL or self.embedder is None:
            lexical = self.store.lexical_search(match, scope, limit, context_weight=weight) if match else []
            return lexical, [], 0.0, []
        if match and names:
            # While the lexical query runs, embed the guess that every name is a speaker (a conversation's
            # participants: the usual case); embed again only if the probe says otherwise.
            pending = self._searcher().submit(self.store.lexical_search, match, scope, limit, context_weight=weight)
            t0 = time.perf_counter()
            guess = without_names(req.query, names)
            vector = query_vector(self.embedder, guess)
            embed_ms = (time.perf_counter() - t0) * 1000
            lexical = pending.result()
            text, spoken = without_speakers(req.query, names, self._seed_texts(
                [cube_id for cube_id, _ in lexical[:_SPEAKER_PROBE]], actor))
            if text != guess:
                t0 = time.perf_counter()
                vector = query_vector(self.embedder, text)
                embed_ms += (time.perf_counter() - t0) * 1000
            return lexical, self.store.vector_search(vector, scope, dense_limit), embed_ms, spoken
        if not match or not self.store.overlaps_searches(req.namespace):
            t0 = time.perf_counter()
            vector = query_vector(self.embedder, req.query)
            embed_ms = (time.perf_counter() - t0) * 1000
            lexical = self.store.lexical_search(match, scope, limit, context_weight=weight) if match else []
            return lexical, self.store.vector_search(vector, scope, dense_limit), embed_ms, []
        # The lexical query needs no vector: it runs while the query embeds (the encoder releases the GIL), then
        # beside the vector query if it is not done yet (the store says its two queries overlap).
        pending = self._searcher().submit(self.store.lexical_search, match, scope, limit, context_weight=weight)
        try:
            t0 = time.perf_counter()
            vector = query_vector(self.embedder, req.query)
            embed_ms = (time.perf_counter() - t0) * 1000
            dense = self.store.vector_search(vector, scope, dense_limit)
        except BaseException:
            wait([pending])  # no lexical query outlives its search
            raise
        return pending.result(), dense, embed_ms, []

    def _full_dense(self, req: SearchRequest, scope: SearchScope) -> Ranking:
        """The dense ranking of the whole question (``strip_speakers`` ``add``: kept beside the one without the
        speakers' names)."""
        if self.embedder is None:  # never: a dense ranking was made before
            return []
        vector = query_vector(self.embedder, req.query)
        return self.store.vector_search(vector, scope, max(req.k, self.text.config.vector_candidates))

    def _topic_view(self, topic: Ranking, lexical: Ranking, dense: Ranking, spoken: list[str],
                    actor: PrincipalPublic) -> Ranking:
        """The ``topic`` ranking (the dense one without the speakers' names ``spoken``) as it is fused: all of it
        (``strip_speakers`` ``add``), only the candidates the lexical or the whole question's dense ranking
        already hold (``pool``: a re-score, not a new pool), or only the turns those speakers spoke whose
        derivation ``actor`` may read (``own``)."""
        mode = self.text.config.strip_speakers
        if mode == "pool":
            held = {cube_id for cube_id, _ in lexical} | {cube_id for cube_id, _ in dense}
            return [(cube_id, score) for cube_id, score in topic if cube_id in held]
        if mode == "own":
            cubes = self.store.load_cubes([cube_id for cube_id, _ in topic])
            wanted = {name.lower() for name in spoken}
            return [(cube_id, score) for cube_id, score in topic if cube_id in cubes
                    and speaker_of(cubes[cube_id].text or "") in wanted
                    and self._readable_derivation(cubes[cube_id], actor)]
        return topic

    def _session_stage(self, req: SearchRequest, plan: Route) -> str:
        """The explanation line of the session stage when it runs for ``req`` (a question that counts or
        compares: router ``session``), else ``""``."""
        cfg = self.text.config
        if req.mode is not SearchMode.HYBRID or not (cfg.session_weight > 0 or cfg.session_penalty > 0
                                                      or cfg.session_slots > 0 or cfg.session_cover > 0):
            return ""
        return self._note(plan, "session") if self._routed(plan, "session") else ""

    def _speaker_stage(self, req: SearchRequest, plan: Route) -> tuple[str | None, float]:
        """The person whose own turns rank first for ``req`` and by how much, when the speaker stage runs:
        ``hop_speaker_boost`` for a question that asks for several pieces of evidence, else ``speaker_boost``."""
        cfg = self.text.config
        boost = cfg.hop_speaker_boost if cfg.hop_speaker_boost > 0 and self._routed(plan, "hop") else cfg.speaker_boost
        if req.mode is not SearchMode.HYBRID or boost <= 0 or not self._routed(plan, "speaker"):
            return None, 0.0
        return plan.speaker, boost

    def _asker_stage(self, req: SearchRequest, plan: Route) -> str:
        """The explanation line of the asker stage (a request for advice: the asker's own turns first) when it
        runs for ``req``, else ``""``."""
        if req.mode is not SearchMode.HYBRID or self.text.config.asker_boost <= 0:
            return ""
        return self._note(plan, "asker") if self._routed(plan, "asker") else ""

    def _by_session(self, hits: list[SearchHit], k: int) -> list[SearchHit]:
        """``hits`` lifted by session (``session_weight``), spread over sessions (``session_penalty``), then the
        first ``k`` reordered so that their first ``session_slots`` places go round-robin by session: the fill
        never brings a deeper hit into the first ``k``; ``session_cover`` does, the best turn of each of the best
        sessions by a session-level score over all of ``hits`` (the readable ones only)."""
        cfg = self.text.config
        hits = aggregate(hits, cfg.exchange_gap_s, cfg.session_weight)
        hits = spread(hits, cfg.exchange_gap_s, cfg.session_penalty)
        hits = cover(hits, cfg.exchange_gap_s, cfg.session_cover, cfg.session_score, cfg.session_margin)
        return fill(hits[:k], cfg.exchange_gap_s, cfg.session_slots) + hits[k:]

    def _as_known(self, hits: list[SearchHit], known_at: datetime, true_at: datetime | None,
                  actor: PrincipalPublic) -> list[SearchHit]:
        """Each hit as it was known at ``known_at`` (its version then), kept only if it held at ``true_at``
        as known then: a fact contradicted after ``known_at`` was still open at that record time."""
        kept: list[SearchHit] = []
        for hit in hits:
            entry = self.store.load_version_as_of(hit.cube.id, known_at)
            if entry is None or (true_at is not None and not holds_at(entry.cube, true_at)):
                continue
            kept.append(hit.model_copy(update={"cube": self._present(entry.cube, actor)}))
        return kept


_WHEN_DEPTH = 3  # candidates per hit wanted, when the query names a time
_SPEAKER_PROBE = 20  # best lexical hits whose speakers tell which of a query's names are the conversation's speakers


def _time_note(window: tuple[datetime, datetime] | None, cue: Ordinal | None, when: bool) -> str:
    parts = [f"window {window[0]:%Y-%m-%d} to {window[1]:%Y-%m-%d}"] if window is not None else []
    parts += [f"the {cue} first"] if cue is not None else []
    parts += ["asks when: dated memories first"] if when else []
    return "time: " + "; ".join(parts)


def holds_at(cube: MemCube, at: datetime) -> bool:
    """Whether ``cube`` held at event time ``at``: it began (``valid_from``, else its event time) at or
    before ``at`` (or has no known start) and was not ended (``valid_to``) at or before it."""
    began = cube.valid_from or cube.source.occurred_at
    return (began is None or began <= at) and (cube.valid_to is None or cube.valid_to > at)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
