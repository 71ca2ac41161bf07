"""Settings of hybrid retrieval (defaults measured on LoCoMo and LongMemEval-S dev: see NOTES.md, bench/ and
``python -m bench.tune_retrieval``).

Fusion (lexical 0.6 / vector 0.4, z-scores, confidence power 1 over the top 3) was chosen as the setting good on
both benchmarks; expansion, sub-queries and neighbours are off because each cost one benchmark what it gained
on the other at k = 10 (figures in the fusion report). Exchange scoring (a turn shares in its adjacent hits'
scores, ``exchange_weight`` 0.3) is on: +2.7 LoCoMo r@10, no LongMemEval-S change (NOTES.md, ``vocab``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TextConfig"]


class TextConfig(BaseModel):
    """How memories are indexed and how lexical and vector results are fused.

    Attributes:
        candidates: lexical results fetched before fusion.
        vector_candidates: vector results fetched before fusion (the vector index's top-k cost grows with k).
        lexical_weight: weight of the standardised BM25 score in the fused score.
        vector_weight: weight of the standardised cosine similarity.
        context_weight: BM25 weight of a memory's context column (event time, preceding turn)
            relative to its own text.
        common_term_share: a query term found in more than this share of documents is common: when
            the query also has selective terms, only documents holding one of those are scored.
        prune_min_documents: below this many indexed documents every match is scored (it is cheap).
        context_words: only the last this many words of the preceding memory go into the context column (0: all).
        session_gap_s: a preceding memory of the same source counts as context only if it happened
            at most this long before (memories without event times always do).
        fusion_norm: how each signal's scores are put on one scale before weighting: ``zscore``, ``minmax``
            or ``rank`` (reciprocal rank, offset ``rank_offset``); see ``engines/text/fusion.py``.
        confidence_power: each signal's weight is multiplied by its confidence in this query (how far its top
            ``confidence_depth`` scores stand out) to this power; 0 turns confidence weighting off.
        expand_hits: first-stage hits whose words seed a second, expanded lexical query (pseudo-relevance
            feedback; 0 turns expansion off). Only hits the searcher may read seed it.
        expand_terms: words (names first) taken from those hits into the expanded query.
        expand_weight: weight of the expanded query's ranking (signal ``expand``) in the fusion.
        split_weight: weight of the sub-queries asked per named person or conjunct (signal ``split``; 0 off).
        neighbour_hits: how many of the best hits bring their adjacent turns (same source, within
            ``session_gap_s``) along, each placed right after its hit (signal ``neighbour``; 0 off).
        neighbour_span: adjacent turns taken on each side of such a hit.
        router: choose the split, hop, session and alias stages per query from the question's own cues
            (``engines/text/route.py``); off, each stage whose weight is above 0 runs for every query.
        hop_hits: first-stage hits whose names seed the two-hop query (signal ``hop``).
        hop_terms: names taken from those hits into the two-hop query.
        hop_weight: weight of the two-hop ranking in the fusion (0 off).
        alias_weight: weight of the query expanded with the namespace's entity aliases of its words
            (signal ``alias``: "dog" -> the dog's name; ``backends/alias.py``; 0 off).
        alias_terms: aliases added to that query at most (the best supported first).
        exchange_gap_s: hits of one source whose event times lie within this of each other (in a chain) belong
            to one session for the session stage: tighter than ``session_gap_s``, because a day often holds
            several conversations.
        session_weight: a hit gains this many standard deviations times the reciprocal-rank mass of the other
            hits of its session (``engines/text/session.py``; 0 off).
        speaker_boost: when a question names one person, the hits that are that person's own turns
            (``"<name>: …"``) gain this many standard deviations (``engines/text/speaker.py``; 0 off).
        vocab_weight: weight of the question expanded with the words of its first hits nearest (by the store's
            embedder) to one of its content words (signal ``vocab``: "cities" -> paris, rome;
            ``engines/text/vocab.py``; 0 off). Needs an embedder.
        vocab_hits: first-stage hits (the searcher may read) whose words are the candidate vocabulary.
        vocab_words: distinct candidate words embedded at most per query (cached across queries).
        vocab_threshold: least cosine similarity of a word to a question term for it to be added.
        vocab_per_term: words added per question term at most; vocab_terms: words added in all at most.
        exchange_weight: how strongly a hit is pulled up by the better fused score of its adjacent turns (same
            source, within ``session_gap_s``) among the candidates (signal ``exchange``;
            ``engines/text/neighbours.py``; 0 off); ``exchange_hits``: the best candidates whose neighbours
            are looked up. ``exchange_mode`` ``toward`` (the default): a turn moves ``exchange_weight`` of the way
            toward its better adjacent hit's score, never past it, so a neighbour never overtakes the hit that
            lifted it; ``lift``: it gains ``exchange_weight`` of that score in standard deviations (measured in
            NOTES.md, session 7: LongMemEval-S dev turn recall@10 +1.7, LoCoMo +0.6, no category lower).
        session_penalty: a hit loses this many standard deviations per better hit of its own session, so that
            evidence spread over several sessions surfaces (0 off).
        asker_boost: when a question asks for advice ("Can you suggest …") or about the asker in the first
            person ("How many instruments do I own?"; ``engines/text/route.py``), the asker's own turns
            (``"user: …"`` or ``"<their principal name>: …"``) gain this many standard deviations
            (``engines/text/speaker.py``; 0 off). 2 measured with ``bench/session_sweep.py`` on LongMemEval-S dev
            (turn recall@5 +10.9, @10 +5.3, beyond noise); no LoCoMo question is routed to it (they are in the
            third person).
        session_depth: candidates per hit the session stage reorders (``k`` times this), so that the best turn
            of a second session deeper in the list can be spread into the first ``k``.
        session_slots: for a question that counts or compares (router ``session``), the first this many of the
            ``k`` hits go round-robin by session, the best turn of each session first; the fill only reorders
            the first ``k`` (``session.fill``; 0 off; measured in NOTES.md, ``sessret``: not adopted).
        session_cover: for such a question, the sessions of the deep candidate list (``k`` times ``session_depth``,
            the searcher's readable hits only) are ranked by ``session_score`` and the best turn of each of the
            first this many is moved into the first places (``session.cover``; 0 off; ``notes/sessdoc.md``).
        session_score: the session-level score ``session_cover`` ranks by: ``top2`` the mean of a session's best
            two candidates' scores, ``best`` its best one, ``rrf`` its reciprocal-rank mass, ``lexsum`` the sum of
            its candidates' raw lexical scores, ``dense2`` the mean of their best two cosine similarities.
        session_margin: ``session_cover`` chooses only sessions whose score lies within this many standard
            deviations (of the sessions' scores) of the best session's (0: no such limit).
        hop_speaker_boost: ``speaker_boost`` for a question naming one person that also asks for several pieces
            of evidence (router ``hop``: "What instruments does Melanie play?"), whose answers are that person's
            own turns (0: ``speaker_boost`` for every one-name question).
        strip_speakers: ``replace``: a hybrid question naming a speaker of the conversation (a name that opens
            one of its best lexical hits the searcher may read: ``"Melanie: …"``) is embedded without that name,
            which otherwise pulls the vector toward every turn that opens with or addresses it
            (``speaker.without_speakers``); the lexical query keeps it. ``add``: that ranking (signal ``topic``)
            is fused beside the whole question's, the two sharing ``vector_weight``; ``pool``: as ``add``, but
            ``topic`` only re-scores the candidates lexical or the whole question's vector already hold;
            ``own``: as ``add``, but ``topic`` holds only those speakers' own turns. ``off``: none.
        topic_hop_only: the ``topic`` ranking of ``add``, ``pool`` and ``own`` only for a question that asks
            for several pieces of evidence (router ``hop``: "What instruments does Melanie play?").
        resolve_times: index the times a memory names ("yesterday", "last month") as absolute dates in its
            context column, resolved against its event time (``engines.text.temporal``).
        time_mode: how a question's time window ranks hits: ``boost`` adds ``time_boost`` (in standard
            deviations of the candidates' scores) to hits of that time, decaying over the slack; ``first``
            puts every hit of that time first; ``filter`` keeps only those; ``off`` ignores the window.
        time_boost: the boost of a hit inside the window, in standard deviations of the candidates' scores.
        time_slack: beyond each end of the window the boost decays to zero over this share of its length
            (at least a day): "in May" also lifts the first days of June a little.
        ordinal_boost: when a question asks for the first or the latest time ("first", "most recent",
            "currently"), the earliest or latest candidate gains this many standard deviations, the others
            in proportion to their place in time (0 turns it off).
        dated_boost: when a question asks for a time ("When did…"), the hits whose own words name one
            ("yesterday", "last week") gain this many standard deviations (0 turns it off). Defaults measured
            with bench/temporal.py on LoCoMo and LongMemEval-S dev; ordinal boosts lost recall there, so
            they are off.
    """

    model_config = ConfigDict(extra="forbid")

    candidates: int = Field(default=100, ge=1, le=1000)
    vector_candidates: int = Field(default=100, ge=1, le=1000)
    lexical_weight: float = Field(default=0.6, ge=0)
    vector_weight: float = Field(default=0.4, ge=0)
    context_weight: float = Field(default=0.5, ge=0)
    session_gap_s: float = Field(default=6 * 3600, ge=0)
    context_words: int = Field(default=40, ge=0, le=100_000)
    common_term_share: float = Field(default=0.2, gt=0, le=1)
    prune_min_documents: int = Field(default=1000, ge=1)
    # -- fusion, expansion and exchange units (issue 16 items 3, 5, 6; measured in NOTES.md) --
    fusion_norm: Literal["zscore", "minmax", "rank"] = "zscore"
    rank_offset: float = Field(default=60.0, gt=0)
    confidence_power: float = Field(default=1.0, ge=0, le=4)
    confidence_depth: int = Field(default=3, ge=1, le=100)
    expand_hits: int = Field(default=0, ge=0, le=50)
    expand_terms: int = Field(default=8, ge=1, le=64)
    expand_weight: float = Field(default=0.3, ge=0)
    split_weight: float = Field(default=0.0, ge=0)
    neighbour_hits: int = Field(default=0, ge=0, le=100)
    neighbour_span: int = Field(default=1, ge=1, le=5)
    # -- the per-query router, two-hop chaining, aliases, sessions (issue 16 items 5-7; measured in NOTES.md) --
    router: bool = True
    hop_hits: int = Field(default=5, ge=1, le=50)
    hop_terms: int = Field(default=6, ge=1, le=64)
    hop_weight: float = Field(default=0.0, ge=0)
    alias_weight: float = Field(default=0.0, ge=0)
    alias_terms: int = Field(default=4, ge=1, le=64)
    exchange_gap_s: float = Field(default=1800.0, ge=0)
    session_weight: float = Field(default=0.0, ge=0, le=100)
    session_penalty: float = Field(default=0.0, ge=0, le=100)
    speaker_boost: float = Field(default=0.0, ge=0, le=100)
    asker_boost: float = Field(default=2.0, ge=0, le=100)
    session_depth: int = Field(default=3, ge=1, le=20)
    session_slots: int = Field(default=0, ge=0, le=100)
    session_cover: int = Field(default=0, ge=0, le=100)
    session_margin: float = Field(default=0.0, ge=0, le=100)
    session_score: Literal["best", "top2", "rrf", "lexsum", "dense2"] = "top2"
    hop_speaker_boost: float = Field(default=0.0, ge=0, le=100)
    strip_speakers: Literal["off", "replace", "add", "pool", "own"] = "off"
    topic_hop_only: bool = False
    # -- vocabulary bridging and exchange scoring (issue 16 items 5-7; helper vocab, measured in NOTES.md) --
    vocab_weight: float = Field(default=0.0, ge=0)
    vocab_hits: int = Field(default=30, ge=1, le=200)
    vocab_words: int = Field(default=400, ge=1, le=5000)
    vocab_threshold: float = Field(default=0.5, ge=-1, le=1)
    vocab_per_term: int = Field(default=3, ge=1, le=64)
    vocab_terms: int = Field(default=8, ge=1, le=64)
    exchange_weight: float = Field(default=0.3, ge=0, le=100)
    exchange_hits: int = Field(default=10, ge=1, le=100)
    exchange_mode: Literal["lift", "toward"] = "toward"

    # -- temporal retrieval (issue 16 item 4): engines/text/temporal.py, chronology.py --
    resolve_times: bool = True
    time_mode: Literal["boost", "first", "filter", "off"] = "boost"
    time_boost: float = Field(default=2.0, ge=0, le=100)
    time_slack: float = Field(default=0.5, ge=0, le=10)
    ordinal_boost: float = Field(default=0.0, ge=0, le=100)
    dated_boost: float = Field(default=1.0, ge=0, le=100)
