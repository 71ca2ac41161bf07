"""The retrieval stages after the first lexical and vector queries: expansion, two-hop chaining, sub-queries,
entity aliases, fusion and exchange-level units (a hit's adjacent turns), each run when the per-query router
(``engines/text/route.py``) chooses it.

Rights: every ranking comes from a store query that applies the searcher's rights and filters itself; the words
of an expansion or a second hop come only from hits of those queries that the searcher may also use through
their derivation (a fact extracted from unreadable sources seeds nothing); an alias comes only from memories
the same scope selects, again with a readable derivation; an adjacent turn is returned only when the same scope
query selects it and its derivation is readable, exactly like a hit.
"""

from __future__ import annotations

import numpy as np

from memcubed.backends.alias import canonical_role
from memcubed.backends.base import ScopedCubes, SearchScope
from memcubed.backends.embedders.querycache import TERM_CACHE
from memcubed.cube.model import MemCube
from memcubed.engines.text.decompose import decomposition_messages, parse_decomposition
from memcubed.engines.text.expand import feedback_query, hop_query, query_names, split_query
from memcubed.engines.text.fusion import FusedHit
from memcubed.engines.text.neighbours import exchange
from memcubed.engines.text.route import Route
from memcubed.engines.text.vocab import candidate_words, related_terms
from memcubed.errors import MemcubedError
from memcubed.kernel.derivation import DerivationOps
from memcubed.schemas.ops import PrincipalPublic, SearchHit, SearchMode, SearchRequest, SignalScore

__all__ = ["RetrieveOps"]

Ranking = list[tuple[str, float]]
_DECOMPOSE_TOKENS = 160
_ALIAS_ROWS = 200  # alias rows read per query: enough to count support, bounded for a chatty namespace


class RetrieveOps(DerivationOps):
    """Expansion, fusion and neighbour stages of ``search`` (see the module docstring)."""

    def _fused(self, req: SearchRequest, scope: SearchScope, lexical: Ranking, dense: Ranking, k: int,
               actor: PrincipalPublic, plan: Route, topic: Ranking | None = None) -> tuple[list[FusedHit], list[str]]:
        """The ``k`` best candidates of the first-stage rankings (``topic``: a second dense one, without the
        speakers' names), with the expansion stages fused in that a hybrid search is configured for and ``plan``
        routes (single-signal modes stay single-signal), and one explanation line per stage that ran."""
        cfg = self.text.config
        extra: dict[str, Ranking] = {"topic": topic} if topic else {}
        notes: list[str] = []
        if req.mode is SearchMode.HYBRID:
            limit = max(req.k, cfg.candidates)
            if cfg.split_weight > 0 and self._routed(plan, "split"):
                extra["split"] = self._split_ranking(req.query, scope, limit)
                notes.append(self._note(plan, "split"))
            hops = cfg.expand_hits if cfg.expand_hits > 0 else 0
            hops = max(hops, cfg.hop_hits if cfg.hop_weight > 0 else 0)
            if hops and (lexical or dense) and self._routed(plan, "hop"):
                seeds = self.text.fuse(lexical, dense, hops, extra)
                texts = self._seed_texts([hit.cube_id for hit in seeds], actor)
                if texts and cfg.expand_hits > 0:
                    query = feedback_query(req.query, texts[: cfg.expand_hits], cfg.expand_terms)
                    extra["expand"] = self._lexical(query, scope, limit)
                if texts and cfg.hop_weight > 0:
                    query = hop_query(req.query, texts[: cfg.hop_hits], cfg.hop_terms)
                    if query != req.query:
                        extra["hop"] = self._lexical(query, scope, limit)
                notes.append(self._note(plan, "hop"))
            if cfg.alias_weight > 0 and self._routed(plan, "alias"):
                words = self._alias_words(req.query, scope, actor)
                if words:
                    extra["alias"] = self._lexical(" ".join([req.query, *words]), scope, limit)
                    notes.append("alias: " + ", ".join(words))
            if cfg.vocab_weight > 0 and self.embedder is not None and (lexical or dense):
                bridged = self._vocab_words(req.query, lexical, dense, extra, actor)
                if bridged:
                    extra["vocab"] = self._lexical(" ".join([req.query, *(w for _, w, _ in bridged)]), scope, limit)
                    notes.append("vocab: " + ", ".join(f"{t}->{w}" for t, w, _ in bridged))
        return self.text.fuse(lexical, dense, k, extra), notes

    def _vocab_words(self, query: str, lexical: Ranking, dense: Ranking, extra: dict[str, Ranking],
                     actor: PrincipalPublic) -> list[tuple[str, str, float]]:
        """The words of the first ``vocab_hits`` hits ``actor`` may use (rights in the index queries, derivation
        here) nearest to the query's content words other than names (``engines/text/vocab.py``); ``[]`` when
        the embedder fails (a search never fails for an expansion)."""
        cfg = self.text.config
        names = {n.lower() for n in query_names(query)}
        asked = [t for t in self.text.query_terms(query) if t not in names and len(t) > 2 and not t.isdigit()]
        if not asked or self.embedder is None:
            return []
        seeds = self.text.fuse(lexical, dense, cfg.vocab_hits, extra)
        texts = self._seed_texts([hit.cube_id for hit in seeds], actor)
        words = candidate_words(texts, self.text.query_terms(query), cfg.vocab_words)
        if not words:
            return []
        try:
            vectors = TERM_CACHE.vectors(self.embedder, [*asked, *words])
        except MemcubedError:
            return []
        matrix = np.stack(vectors)
        return related_terms(asked, matrix[: len(asked)], words, matrix[len(asked):], threshold=cfg.vocab_threshold,
                             per_term=cfg.vocab_per_term, total=cfg.vocab_terms)

    def _routed(self, plan: Route, stage: str) -> bool:
        """Whether ``stage`` runs: the router chose it, or the router is off (then every weighted stage runs)."""
        return not self.text.config.router or stage in plan.reasons

    def _note(self, plan: Route, stage: str) -> str:
        return f"{stage}: {plan.reasons.get(stage, 'on for every query (router off)')}"

    def _alias_words(self, query: str, scope: SearchScope, actor: PrincipalPublic) -> list[str]:
        """Up to ``alias_terms`` aliases of the query's words (the pet's name for "dog"; "dog" for a pet's
        name) that the query lacks, best supported first: learnt from memories of ``scope`` only (rights and
        filters in the store query) whose derivation ``actor`` may read."""
        terms = self.text.query_terms(query)
        keys = list(dict.fromkeys([*terms, *(r for t in terms if (r := canonical_role(t)) is not None)]))
        rows = self.store.alias_terms(keys, scope, _ALIAS_ROWS)
        if not rows:
            return []
        cubes = self.store.load_cubes(list(dict.fromkeys(cube_id for _, _, cube_id in rows)))
        usable = {i for i, cube in cubes.items() if self._readable_derivation(cube, actor)}
        asked = set(keys)
        support: dict[str, int] = {}
        for _, alias, cube_id in rows:
            if cube_id in usable and alias not in asked:
                support[alias] = support.get(alias, 0) + 1
        return sorted(support, key=lambda w: (-support[w], w))[: self.text.config.alias_terms]

    def _match(self, query: str, namespace: str) -> str | None:
        """The full-text expression for ``query`` (``ReadOps`` defines it)."""
        raise NotImplementedError

    def _lexical(self, query: str, scope: SearchScope, limit: int) -> Ranking:
        match = self._match(query, scope.namespace)
        if not match:
            return []
        return self.store.lexical_search(match, scope, limit, context_weight=self.text.config.context_weight)

    def _split_ranking(self, query: str, scope: SearchScope, limit: int) -> Ranking:
        """One ranking of the sub-queries of ``query``: each candidate's best score relative to its
        sub-query's top score, so that every sub-query counts alike."""
        best: dict[str, float] = {}
        for sub in self._sub_queries(query):
            ranking = self._lexical(sub, scope, limit)
            top = ranking[0][1] if ranking and ranking[0][1] > 0 else 1.0
            for cube_id, score in ranking:
                best[cube_id] = max(best.get(cube_id, 0.0), score / top)
        return sorted(best.items(), key=lambda item: (-item[1], item[0]))

    def _sub_queries(self, query: str) -> list[str]:
        """The configured decomposer's sub-queries of ``query``; the offline split when none is set, it fails,
        or its answer is malformed (a search never fails for its decomposer)."""
        if self.settings.decomposer is not None:
            try:
                reply = self.models.get(self.settings.decomposer).complete(
                    decomposition_messages(query), max_new_tokens=_DECOMPOSE_TOKENS)
            except MemcubedError:
                reply = ""
            queries = parse_decomposition(reply)
            if queries:
                return queries
        return split_query(query)

    def _seed_texts(self, cube_ids: list[str], actor: PrincipalPublic) -> list[str]:
        """The texts of ``cube_ids`` (in order) that ``actor`` may use through their derivation."""
        cubes = self.store.load_cubes(cube_ids)
        return [cubes[i].text or "" for i in cube_ids
                if i in cubes and cubes[i].text and self._readable_derivation(cubes[i], actor)]

    def _with_neighbours(self, hits: list[SearchHit], req: SearchRequest, scope: SearchScope,
                         actor: PrincipalPublic) -> list[SearchHit]:
        """``hits`` (at most ``req.k``) with the adjacent turns of the best ``neighbour_hits`` placed right after
        them (a later hit that is one moves up), each with a ``neighbour`` signal (rank: its hit's position);
        a turn that is no hit yet comes only if the scope's rights and filters select it."""
        cfg = self.text.config
        if cfg.neighbour_hits == 0 or req.mode is not SearchMode.HYBRID or not hits:
            return hits
        found = {hit.cube.id: hit for hit in hits}
        adjacent = {hit.cube.id: self._adjacent(hit.cube, cfg.neighbour_span) for hit in hits[: cfg.neighbour_hits]}
        fresh = list(dict.fromkeys(c.id for cubes in adjacent.values() for c in cubes if c.id not in found))
        allowed = self.store.scoped_ids(fresh, scope)
        out: dict[str, SearchHit] = {}
        for position, hit in enumerate(hits):
            if hit.cube.id in out:
                continue
            out[hit.cube.id] = hit
            for cube in adjacent.get(hit.cube.id, []):
                if cube.id in out:
                    continue
                signal = {"neighbour": SignalScore(rank=position + 1, score=hit.score)}
                if cube.id in found:
                    known = found[cube.id]
                    out[cube.id] = known.model_copy(update={"signals": {**known.signals, **signal}})
                elif cube.id in allowed and self._readable_derivation(cube, actor):
                    out[cube.id] = SearchHit(cube=self._present(cube, actor), score=hit.score, signals=signal)
        return list(out.values())[: req.k]

    def _exchange(self, hits: list[SearchHit], scope: SearchScope, actor: PrincipalPublic,
                  loaded: ScopedCubes) -> list[SearchHit]:
        """``hits`` re-ranked by exchange scoring (``engines/text/neighbours.py``): the adjacent turns of the best
        ``exchange_hits`` share in their scores; a turn that is no hit yet comes only if the scope's rights and
        filters select it and its derivation is readable, exactly like a hit. ``loaded`` is the candidate
        fetch (``load_scoped`` with adjacency): the neighbours it holds are not read again, the others are read
        in one more query."""
        cfg = self.text.config
        top = {hit.cube.id: hit.cube for hit in hits[: cfg.exchange_hits]}
        # By id: the order a store's rows for ``adjacent_ids(top)`` came in (``exchange`` keeps it on ties).
        pairs = {i: loaded.adjacent[i] for i in sorted(top) if i in loaded.adjacent}
        unread = [i for i in top if i not in loaded.cubes]  # none: every hit is a candidate the fetch read
        if unread:
            pairs = dict(sorted({**pairs, **self.store.adjacent_ids(unread)}.items()))
        wanted = list(dict.fromkeys(i for pair in pairs.values() for i in pair if i))
        extra = self.store.load_scoped([i for i in wanted if i not in loaded.cubes], scope)
        near, selected = {**loaded.cubes, **extra.cubes}, loaded.selected | extra.selected
        adjacent = {hit_id: [near[i] for i in pair if i in near and _close(top[hit_id], near[i], cfg.session_gap_s)]
                    for hit_id, pair in pairs.items()}
        known = {hit.cube.id: hit for hit in hits}
        neighbours = {
            hit_id: [known.get(c.id) or SearchHit(cube=self._present(c, actor), score=0.0, signals={})
                     for c in cubes
                     if c.id in known or (c.id in selected and self._readable_derivation(c, actor))]
            for hit_id, cubes in adjacent.items()}
        return exchange(hits, neighbours, cfg.exchange_weight, cfg.exchange_mode)

    def _adjacent(self, cube: MemCube, span: int) -> list[MemCube]:
        """Up to ``span`` live turns on each side of ``cube`` in its source (nearest first, before then after),
        each within ``session_gap_s`` of the previous one when both have event times."""
        uri = cube.source.uri
        if not uri:
            return []
        found: list[MemCube] = []
        for earlier in (True, False):
            current = cube
            for _ in range(span):
                nxt = (self.store.preceding(cube.namespace, uri, before=current.id) if earlier
                       else self.store.following(cube.namespace, uri, after=current.id))
                if nxt is None or not _close(current, nxt, self.text.config.session_gap_s):
                    break
                found.append(nxt)
                current = nxt
        return found


def _close(a: MemCube, b: MemCube, gap_s: float) -> bool:
    when_a, when_b = a.source.occurred_at, b.source.occurred_at
    return when_a is None or when_b is None or abs((when_a - when_b).total_seconds()) <= gap_s
