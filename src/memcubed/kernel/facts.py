"""Resolution of an extracted fact against what its principal already knows, and the write it leads to.

A new fact is one of: *add* (a new fact cube), *update* (a new version of a known fact, its history
kept), *contradict* (the known fact gets ``valid_to``, the new one ``valid_from``; both stay queryable),
or *no-op* (a duplicate: the same words, or an embedding at least ``duplicate_similarity`` close; no model
needed). Only the principal's **own** open facts are candidates (a fact shared by someone else is never
changed, nor taken as known). Every fact cube is derived from the turn cubes it came from, so rights flow
through the derivation: who cannot read a source turn cannot use the fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from memcubed.backends.base import IndexEntry
from memcubed.backends.models.base import KVLanguageModel, LanguageModel
from memcubed.cube.model import DerivedRef, MemCube, Right, Source
from memcubed.engines.text.extract import (
    InvalidOutput,
    looks_like_instruction,
    normalized,
    parse_resolution,
    quoted_statement,
    resolution_messages,
)
from memcubed.engines.text.resolve_local import resolve_by_likelihood
from memcubed.errors import MemcubedError
from memcubed.kernel import limits
from memcubed.kernel.base import bump, check_version, utcnow
from memcubed.kernel.reads import ReadOps
from memcubed.kernel.writes import WriteOps
from memcubed.schemas.ops import CubeCreate, PrincipalPublic, SearchFilters, SearchHit, SearchRequest
from memcubed.schemas.remember import ExtractedFact, FactOutcome, Resolution

__all__ = ["FACT_TAG", "TURN_TAG", "FactOps", "said"]

FACT_TAG = "fact"
TURN_TAG = "turn"
QUOTED_TAG = "quoted"
_CANDIDATES = 5


def said(turn: MemCube) -> str:
    """The words of a turn cube without the ``speaker:`` its text starts with."""
    text = turn.text or ""
    prefix = f"{turn.meta.get('speaker', '')}: "
    return text[len(prefix):] if text.startswith(prefix) else text


class FactOps(WriteOps, ReadOps):
    """Resolving and writing extracted facts (used by ``remember`` and ``extract``)."""

    def _resolve_fact(self, fact: ExtractedFact, sources: Sequence[MemCube], actor: PrincipalPublic,
                      namespace: str, lm: LanguageModel | None, extractor: str | None) -> FactOutcome:
        """Resolve one extracted fact and write what it resolves to; never raises for the model's answer."""
        speaker = str(sources[0].meta.get("speaker") or sources[0].owner)
        quoted = fact.instruction or looks_like_instruction(fact.statement)
        # Instructions are kept as what was said, in the speaker's own words: never as a rule of their own.
        origin = next((s for s in sources if looks_like_instruction(said(s))), sources[0])
        text = quoted_statement(str(origin.meta.get("speaker") or speaker), said(origin)) if quoted \
            else fact.statement.strip()
        starts = [s.source.occurred_at for s in sources if s.source.occurred_at is not None]
        valid_from = fact.valid_from or (max(starts) if starts else None)
        valid_to = fact.valid_to if fact.valid_to and (valid_from is None or fact.valid_to > valid_from) else None
        refs = [DerivedRef(id=s.id, version=s.version) for s in sources]
        outcome = FactOutcome(action="add", statement=text, subject=fact.subject, sources=[r.id for r in refs],
                              quoted=quoted)
        known = [h for h in self._known_facts(text, namespace, actor) if h.cube.valid_to is None]
        duplicate = _duplicate(text, known, self.settings.duplicate_similarity)
        if duplicate is not None:
            return outcome.model_copy(update={"action": "noop", "target": duplicate[0].cube.id,
                                              "reason": duplicate[1]})
        action, target = "add", None
        if lm is not None and known and not quoted:
            try:
                resolution, shown, why = self._resolution(lm, text, fact.subject, known, valid_from)
                action = resolution.action
                target = shown[resolution.target - 1].cube if resolution.target is not None else None
                outcome = outcome.model_copy(update={"reason": why})
            except (InvalidOutput, MemcubedError) as exc:
                # Resolution is best effort: a failed answer adds the fact (nothing is lost) and says so.
                reason = exc.reason if isinstance(exc, InvalidOutput) else exc.code
                outcome = outcome.model_copy(update={"reason": f"resolver failed ({reason}): added"})
        create = CubeCreate(
            text=text, namespace=namespace, tags=[FACT_TAG, QUOTED_TAG] if quoted else [FACT_TAG],
            source=Source(type="extracted", uri=sources[0].source.uri,
                          ref=",".join(str(s.source.ref) for s in sources)[:256] or None, occurred_at=valid_from),
            derived_from=refs, meta={"subject": fact.subject[:200], "extractor": extractor},
            valid_from=valid_from, valid_to=valid_to)
        if action == "noop" and target is not None:
            return outcome.model_copy(update={"action": "noop", "target": target.id, "reason": "resolver: duplicate"})
        if action == "update" and target is not None:
            cube = self._update_fact(target, text, refs, fact.subject, actor)
            return outcome.model_copy(update={"action": "update", "target": target.id, "cube_id": cube.id})
        if action == "contradict" and target is not None:
            cube = self._contradict(target, create, actor)
            return outcome.model_copy(update={"action": "contradict", "target": target.id, "cube_id": cube.id})
        cube = self.add_many([create], principal=actor.name)[0]
        return outcome.model_copy(update={"cube_id": cube.id})

    def _resolution(self, lm: LanguageModel, text: str, subject: str, known: list[SearchHit],
                    begins: datetime | None) -> tuple[Resolution, list[SearchHit], str | None]:
        """How ``text`` relates to the ``known`` facts, the known facts its target numbers, and why the
        model's answer was changed (None: it was not): the resolver prompt's answer; or, under
        ``extract_format: slots`` with an open model, the likeliest of four fixed answers per known fact
        **of the same subject** (a slot fact's subject is its speaker: another speaker's fact is never the
        one it updates or contradicts), add when there is none. A contradiction from the local model needs
        what ``settings.resolve_contradict`` asks (by default a ``changed`` answer and a change word:
        ``resolve_local.resolve_by_likelihood``) and a new fact that begins
        after the known one (``begins``, when both times are known); else the fact is added.

        Raises:
            InvalidOutput: the resolver's answer is not the JSON asked for.
            MemcubedError: the model fails.
        """
        if self.settings.extract_format == "slots" and isinstance(lm, KVLanguageModel):
            same = [h for h in known if h.cube.meta.get("subject") == subject[:200]]
            if not same:
                return Resolution(action="add"), same, None
            choice = resolve_by_likelihood(lm, text, [h.cube.text or "" for h in same],
                                           contradict=self.settings.resolve_contradict)
            found = choice.resolution
            if found.action == "contradict" and found.target is not None:
                started = same[found.target - 1].cube.valid_from
                if begins is not None and started is not None and begins <= started:
                    return Resolution(action="add"), same, "contradiction of a fact that begins later: added"
            return found, same, choice.reason
        reply = lm.complete(resolution_messages(text, [h.cube.text or "" for h in known]), max_new_tokens=64)
        return parse_resolution(reply, len(known)), known, None

    def _known_facts(self, text: str, namespace: str, actor: PrincipalPublic) -> list[SearchHit]:
        """The principal's own active facts closest to ``text`` (no access counted)."""
        request = SearchRequest(query=text[:10_000], namespace=namespace, k=_CANDIDATES,
                                filters=SearchFilters(owner=actor.name, tags=[FACT_TAG]))
        return self._find(request, actor)[0]

    def _update_fact(self, target: MemCube, text: str, refs: list[DerivedRef], subject: str,
                     actor: PrincipalPublic) -> MemCube:
        """A new version of ``target`` with ``text``, derived from its sources and ``refs`` (history kept)."""
        vector, chunks = self._embed([text])[0], self._embed_chunks([text])[0]
        with self._write() as pending:
            old = self._load(target.id, actor, Right.WRITE)
            check_version(old, target.version)
            new = bump(old, text=text, derived_from=list(dict.fromkeys([*old.derived_from, *refs])),
                       meta={**old.meta, "subject": subject[:200]})
            self.store.replace_cube(new, reindex=IndexEntry(context=self._context(new, before=new.id), vector=vector,
                                                            chunks=chunks))
            self.store.add_derivations(new.id, refs)
            self._refresh_context(new, itself=False)
            limits.check_quota(self.store, self.settings, new.owner)
            self._commit(pending, new, "update", actor, {"fields": ["derived_from", "meta", "text"],
                                                          "by": "remember"})
            self._mark_derived_stale(new, actor, pending)
        return new

    def _contradict(self, target: MemCube, create: CubeCreate, actor: PrincipalPublic) -> MemCube:
        """Close ``target`` where the new fact begins (``valid_to``) and add the new fact, in one write.

        A new fact that began before the known one (told out of order) ends where the known one begins."""
        with self._write() as pending:
            old = self._load(target.id, actor, Right.WRITE)
            check_version(old, target.version)
            begins = create.valid_from or utcnow()
            if old.valid_from is not None and begins <= old.valid_from:
                create = create.model_copy(update={"valid_to": old.valid_from})
                if create.valid_from is not None and create.valid_from >= old.valid_from:
                    create = create.model_copy(update={"valid_from": old.valid_from - timedelta(microseconds=1)})
                return self.add_many([create], principal=actor.name)[0]
            new = self.add_many([create.model_copy(update={"valid_from": begins})], principal=actor.name)[0]
            closed = bump(old, valid_to=begins)
            self.store.replace_cube(closed)
            self._commit(pending, closed, "contradict", actor, {"by": new.id, "valid_to": _iso(begins)})
        return new


def _duplicate(text: str, known: list[SearchHit], threshold: float) -> tuple[SearchHit, str] | None:
    """The known fact ``text`` duplicates, by exact (normalised) words or embedding similarity, and why."""
    norm = normalized(text)
    for hit in known:
        if normalized(hit.cube.text or "") == norm:
            return hit, "exact duplicate"
    for hit in known:
        signal = hit.signals.get("vector")
        if signal is not None and signal.score >= threshold:
            return hit, f"similar to a known fact (cosine {signal.score:.3f})"
    return None


def _iso(value: datetime) -> str:
    return value.isoformat()
