"""The kernel's ``remember`` and ``extract``: conversation turns in, memories out.

``remember`` stores each raw turn as a plaintext cube of the caller (text ``"speaker: words"``, source
``conversation:<conversation_id>#<turn_id>``, the turn's time as event time), idempotently per (owner,
conversation_id, turn_id); a turn repeating the same speaker's earlier words is a no-op. With an extractor
configured (``settings.extractor``) it then asks that model for facts, validates the answer strictly, and
resolves each fact (``kernel.facts``). A failed extraction loses nothing: the turns are stored, the
failure is in the result, and an ``extract`` job retries it (up to ``extract_max_attempts`` tries in all).
The extractor is asked before anything is written, so the turns, the facts resolved from them (each with
its audit record), the retry job and its ``job.submit`` record (which names the failure) are one write: a
crash or a refused write leaves all of it or none of it, never a turn whose facts or retry are lost.
Without an extractor the result says so (``extracted: false``, with the reason).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from memcubed.backends.models.base import KVLanguageModel, LanguageModel
from memcubed.cube.ids import owned_cube_id
from memcubed.cube.model import CubeKind, CubeState, MemCube, Right, Source
from memcubed.engines.text.extract import (
    InvalidOutput,
    PromptTurn,
    extraction_messages,
    lines_extraction_messages,
    normalized,
    parse_extraction,
    parse_extraction_lines,
    retry_seed,
)
from memcubed.engines.text.extract_local import Rejected, extract_slots
from memcubed.errors import BudgetExceeded, ConfigurationError, MemcubedError, UpstreamError, ValidationError
from memcubed.kernel.base import Progress, utcnow
from memcubed.kernel.events import Event
from memcubed.kernel.facts import TURN_TAG, said
from memcubed.kernel.jobs import JobKind, JobOps
from memcubed.kernel.summaries import SummaryOps
from memcubed.kernel.validation import check_text, parse
from memcubed.schemas.base import is_blank
from memcubed.schemas.chat import ChatRequest
from memcubed.schemas.jobs import JobRecord
from memcubed.schemas.ops import CubeCreate, PrincipalPublic, SearchFilters, SearchRequest
from memcubed.schemas.remember import (
    ExtractInput,
    Extraction,
    FactOutcome,
    RememberInput,
    RememberResult,
    Turn,
    TurnOutcome,
)

__all__ = ["RememberOps", "turn_key"]

_TURNS = uuid.UUID("6d656d63-7475-726e-0000-72656d656d62")
"""The uuid5 namespace of turn keys (see ``turn_key``)."""
_MIN_DUPLICATE_WORDS = 4  # "ok", "yes!" and "haha thanks" are said again and again: never duplicates


def turn_key(conversation_id: str, turn_id: str) -> str:
    """The caller's key of a turn (stored as ``owned_cube_id(owner, key)``): one per (conversation, turn)."""
    return str(uuid.uuid5(_TURNS, f"{conversation_id}\n{turn_id}"))


class RememberOps(SummaryOps, JobOps):
    """``remember`` (store turns, extract and resolve facts) and ``extract`` (its retry, also a job kind)."""

    def remember(self, request: RememberInput | Mapping[str, Any], *, principal: str) -> RememberResult:
        """Store conversation turns as the principal's memories; extract and resolve facts when configured.

        Raises:
            ValidationError: malformed turns (naive time, blank text, a repeated turn id, a turn too long).
            BudgetExceeded: more than ``remember_max_turns`` turns, or the principal's quota.
            UnknownPrincipal / AccessDenied: the principal is unknown or disabled.
        """
        actor = self._actor(principal)
        req = parse(RememberInput, dict(request) if isinstance(request, Mapping) else request)
        if len(req.turns) > self.settings.remember_max_turns:
            raise BudgetExceeded(f"remember takes at most {self.settings.remember_max_turns} turns per call",
                                 field="turns", limit=self.settings.remember_max_turns)
        for turn in req.turns:
            check_text(_document(turn), self.settings.max_text_chars)
        ids = [owned_cube_id(actor.name, turn_key(t.conversation_id, t.turn_id)) for t in req.turns]
        existing = self.store.load_cubes(ids)
        outcomes: list[TurnOutcome] = []
        creates: list[CubeCreate] = []
        batch: dict[tuple[str, str], str] = {}
        keys: dict[str, str | None] = {}  # turn cubes of this batch (None: a no-op duplicate, not stored)
        for turn, cube_id in zip(req.turns, ids, strict=True):
            base = {"turn_id": turn.turn_id, "conversation_id": turn.conversation_id}
            if cube_id in existing or cube_id in keys:
                outcomes.append(TurnOutcome(**base, action="existing", cube_id=keys.get(cube_id, cube_id)))
                continue
            keys[cube_id] = cube_id
            words = (turn.speaker, normalized(turn.text))
            duplicate = batch.get(words) if len(words[1].split()) >= _MIN_DUPLICATE_WORDS else None
            duplicate = duplicate or self._duplicate_turn(turn, req.namespace, actor)
            if duplicate is not None:
                keys[cube_id] = None
                outcomes.append(TurnOutcome(**base, action="noop", duplicate_of=duplicate))
                continue
            batch[words] = cube_id
            creates.append(_turn_create(turn, req.namespace))
            outcomes.append(TurnOutcome(**base, action="added", cube_id=cube_id))
        prepared = self._prepare_adds(creates, actor) if creates else None
        stored = prepared[1] if prepared is not None else []
        extracting = req.extract and self.settings.extractor is not None and bool(stored)
        # The extractor is asked before anything is written; then the turns, the facts resolved from them
        # and the retry job of the batches that failed commit in one write: a crash or a failed write leaves
        # either all of them or nothing (the client's resend then redoes it all), never a stored turn whose
        # facts or retry are lost.
        asked = self._ask_extractor(stored) if extracting else None
        result = RememberResult(turns=outcomes, extracted=False)
        if not req.extract:
            result.reason = "extraction not asked for (extract: false)"
        elif self.settings.extractor is None:
            result.reason = "no extractor configured (settings.extractor)"
        elif asked is None:
            result.reason = "no new turns to extract from"
        if prepared is not None:
            with self._write() as pending:
                self._insert_adds(pending, prepared, actor)
                if asked is not None:
                    job = self._queue_retry(pending, asked, actor, attempt=1)
                    result = self._extracted(result, stored, asked, actor, attempt=1, job=job)
        if self.settings.summarizer is None:
            result.summary_reason = "no summariser configured (settings.summarizer)"
        elif not stored:
            result.summary_reason = "no new turns to summarise"
        else:
            result.summaries, failures = self._summarize(stored, actor)
            result.summarized = bool(result.summaries)
            result.summary_reason = "; ".join(failures)[:500] or (
                None if result.summaries else "no turn carries a session_id")
        return result

    def remember_conversation(self, request: ChatRequest, reply: str, *, principal: str) -> list[MemCube]:
        """Remember a chat's whole conversation and ``reply`` as turns (what ``chat`` and the proxy do under
        ``settings.remember_conversations``); return the turn and fact cubes written.

        Turn ids are positions in the conversation, so a client resending its history adds only the new
        turns. The conversation id is ``chat:<request.conversation>``, or, without one, a digest of the
        conversation's first message (stable while the conversation grows).

        Raises:
            ValidationError / BudgetExceeded: what ``remember`` raises for these turns.
        """
        actor = self._actor(principal)
        messages = [(m.role, m.content) for m in request.messages if m.role in ("user", "assistant")]
        messages.append(("assistant", reply))
        first = messages[0][1] if messages else ""
        conversation = f"chat:{request.conversation}" if request.conversation else \
            "chat:" + hashlib.sha256(first.encode("utf-8")).hexdigest()[:16]
        now = utcnow()
        last = len(messages) - 2  # the question: said now, like the reply
        turns = [{"speaker": actor.name if role == "user" else "assistant", "role": role, "text": text,
                  "conversation_id": conversation, "turn_id": str(n), "time": now if n >= last else None}
                 for n, (role, text) in enumerate(messages) if not is_blank(text)]
        result = self.remember({"turns": turns, "namespace": request.namespace}, principal=actor.name)
        ids = [t.cube_id for t in result.turns if t.action == "added" and t.cube_id]
        ids += [f.cube_id for f in result.facts if f.cube_id and f.action in ("add", "contradict")]
        found = self.store.load_cubes(ids)
        return [self._present(found[i], actor) for i in ids if i in found]

    def extract(self, request: ExtractInput | Mapping[str, Any], *, principal: str) -> RememberResult:
        """Extract and resolve facts from stored turn cubes of the principal (the retry of a failed extraction).

        Raises:
            ConfigurationError: no extractor is configured.
            NotFound / AccessDenied: a cube is not the principal's own turn (or not readable at all).
            ValidationError: a cube is not an active turn.
        """
        actor = self._actor(principal)
        req = parse(ExtractInput, dict(request) if isinstance(request, Mapping) else request)
        turns = self._own_turns(req.cube_ids, actor)
        asked = self._ask_extractor(turns, attempt=req.attempt)
        # One write for the facts and the successor job: run as a job, its output commits with its end,
        # exactly once (kernel.lease), and a crash in between leaves the job to be claimed again.
        with self._write() as pending:
            job = self._queue_retry(pending, asked, actor, attempt=req.attempt)
            return self._extracted(RememberResult(extracted=False), turns, asked, actor, attempt=req.attempt,
                                   job=job)

    def _extract_job(self) -> JobKind:
        def run(params: ExtractInput, principal: str, progress: Progress) -> dict[str, Any]:
            result = self.extract(params, principal=principal)
            if not result.extracted:  # the job fails visibly; its successor (retry_job) tries again
                raise UpstreamError(result.reason or "extraction failed", retry_job=result.retry_job)
            return result.model_dump(mode="json")

        def check(params: ExtractInput, actor: PrincipalPublic) -> None:
            self._own_turns(params.cube_ids, actor)

        return JobKind(params=ExtractInput, check=check, run=run)

    def _own_turns(self, cube_ids: Sequence[str], actor: PrincipalPublic) -> list[MemCube]:
        turns = [self._load(cube_id, actor, Right.ADMIN) for cube_id in dict.fromkeys(cube_ids)]
        for turn in turns:
            if turn.kind is not CubeKind.PLAINTEXT or turn.state is not CubeState.ACTIVE or TURN_TAG not in turn.tags:
                raise ValidationError(f"cube {turn.id} is not an active remembered turn", id=turn.id)
        if self.settings.extractor is None:
            raise ConfigurationError("no extractor configured (settings.extractor)", field="extractor")
        return turns

    def _duplicate_turn(self, turn: Turn, namespace: str, actor: PrincipalPublic) -> str | None:
        """An earlier turn of the principal with the same speaker and the same words (or an embedding at
        least ``duplicate_similarity`` close); short turns are never duplicates."""
        words = normalized(turn.text)
        if len(words.split()) < _MIN_DUPLICATE_WORDS:
            return None
        request = SearchRequest(query=_document(turn)[:10_000], namespace=namespace, k=3,
                                filters=SearchFilters(owner=actor.name, tags=[TURN_TAG]))
        for hit in self._find(request, actor)[0]:
            if hit.cube.meta.get("speaker") != turn.speaker:
                continue
            vector = hit.signals.get("vector")
            if normalized(said(hit.cube)) == words or (vector is not None and
                                                       vector.score >= self.settings.duplicate_similarity):
                return hit.cube.id
        return None

    def _ask_extractor(self, turns: list[MemCube], *, attempt: int = 1) -> _Asked:
        """Ask the extractor for the facts of ``turns`` (stored or about to be), batch by batch, for the
        ``attempt``-th time; writes nothing."""
        extractor = self.settings.extractor
        assert extractor is not None
        asked = _Asked()
        try:
            lm = asked.lm = self.models.get(extractor)
        except MemcubedError as exc:
            asked.reasons, asked.failed = [f"extractor {extractor} could not be loaded ({exc.code})"], list(turns)
            return asked
        for batch in _batches(turns, self.settings.extract_batch_turns):
            keys = {f"t{n}": turn for n, turn in enumerate(batch, start=1)}
            prompt = [PromptTurn(key=k, speaker=str(t.meta.get("speaker", t.owner)), time=t.source.occurred_at,
                                 text=said(t)) for k, t in keys.items()]
            try:
                asked.answers.append((keys, self._extraction(lm, keys, prompt, asked, attempt)))
            except (InvalidOutput, MemcubedError) as exc:
                asked.reasons.append(exc.reason if isinstance(exc, InvalidOutput) else f"{exc.code}: {exc}"[:300])
                asked.failed.extend(batch)
        return asked

    def _extraction(self, lm: LanguageModel, keys: dict[str, MemCube], prompt: list[PromptTurn],
                    asked: _Asked, attempt: int) -> Extraction:
        """One batch's facts in the configured answer format (``settings.extract_format``); a retry (json,
        lines) samples at ``extract_retry_temperature`` from the seed of its turns and try (``retry_seed``).

        Raises:
            InvalidOutput: the answer is not of the format (json, lines), or slots without an open model.
        """
        form = self.settings.extract_format
        if form == "slots":
            if not isinstance(lm, KVLanguageModel):
                raise InvalidOutput(f"extract_format slots needs an open local model, not {lm.name}")
            slots = extract_slots(lm, prompt, retries=self.settings.extract_slot_retries,
                                  temperature=self.settings.extract_retry_temperature)
            asked.rejected.extend((keys[r.key], r) for r in slots.rejected)
            return slots.extraction
        messages = (lines_extraction_messages if form == "lines" else extraction_messages)(prompt)
        temperature = self.settings.extract_retry_temperature if attempt > 1 else 0.0
        if temperature > 0:  # a greedy model would repeat the answer that failed
            reply = lm.complete(messages, max_new_tokens=self.settings.extract_max_tokens, temperature=temperature,
                                seed=retry_seed(prompt, attempt))
        else:
            reply = lm.complete(messages, max_new_tokens=self.settings.extract_max_tokens)
        if form == "lines":
            return parse_extraction_lines(reply, [t.key for t in prompt])
        return parse_extraction(reply, [t.key for t in prompt], notes=asked.notes)

    def _queue_retry(self, pending: list[Event], asked: _Asked, actor: PrincipalPublic, *,
                     attempt: int) -> JobRecord | None:
        """Queue the ``extract`` job of the failed batches in the caller's write (with the failure in its
        ``job.submit`` audit record), unless none failed or this was the last allowed try."""
        if not asked.failed or attempt >= self.settings.extract_max_attempts:
            return None
        return self._queue_job(pending, {"kind": "extract", "params": {"cube_ids": [t.id for t in asked.failed],
                                                                       "attempt": attempt + 1}},
                               actor, failure="; ".join(asked.reasons)[:500], attempt=attempt)

    def _extracted(self, result: RememberResult, turns: list[MemCube], asked: _Asked, actor: PrincipalPublic, *,
                   attempt: int, job: JobRecord | None) -> RememberResult:
        """Resolve every fact of the batches that were answered; say what failed and which job retries it."""
        extractor = self.settings.extractor
        assert extractor is not None
        facts: list[FactOutcome] = []
        for keys, extraction in asked.answers:
            for fact in extraction.facts:
                sources = [keys[k] for k in dict.fromkeys(fact.turn_ids)]
                facts.append(self._resolve_fact(fact, sources, actor, sources[0].namespace, asked.lm, extractor))
        facts += [FactOutcome(action="rejected", statement=r.statement, subject=r.subject, sources=[turn.id],
                              reason=r.reason) for turn, r in asked.rejected]
        result = result.model_copy(update={"facts": [*result.facts, *facts], "extractor": extractor,
                                           "notes": [*result.notes, *asked.notes]})
        result.counts = _counts(result.facts)
        failed = asked.failed
        if not failed:
            return result.model_copy(update={"extracted": True, "reason": None})
        result.extracted = len(failed) < len(turns)
        note = f"extraction failed for {len(failed)} of {len(turns)} turns: {'; '.join(asked.reasons)[:500]}"
        if job is not None:
            result.retry_job = job.id
            note += f"; retry queued (job {job.id}, try {attempt + 1} of {self.settings.extract_max_attempts})"
        else:
            note += f"; gave up after {attempt} tries (the turns stay stored)"
        result.reason = note
        if result.extracted:  # some batches went through: say which part did not
            result.reason = "partly: " + note
        return result


@dataclass
class _Asked:
    """The extractor's answers for some turns: the parsed answer of each batch that gave one (by its prompt
    keys), the turns of the batches that did not, and why."""

    lm: LanguageModel | None = None
    answers: list[tuple[dict[str, MemCube], Extraction]] = field(default_factory=list)
    failed: list[MemCube] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    rejected: list[tuple[MemCube, Rejected]] = field(default_factory=list)  # slots: sentences not kept
    notes: list[str] = field(default_factory=list)  # what was tolerated in the answers (text discarded)


def _document(turn: Turn) -> str:
    return f"{turn.speaker}: {turn.text}"


def _turn_create(turn: Turn, namespace: str) -> CubeCreate:
    meta: dict[str, Any] = {"speaker": turn.speaker, "role": turn.role}
    if turn.session_id is not None:
        meta["session_id"] = turn.session_id
    return CubeCreate(text=_document(turn), namespace=namespace, tags=[TURN_TAG], meta=meta,
                      id=turn_key(turn.conversation_id, turn.turn_id),
                      source=Source(type="conversation", uri=turn.conversation_id, ref=turn.turn_id,
                                    occurred_at=turn.time))


def _batches(turns: list[MemCube], size: int) -> list[list[MemCube]]:
    """Turns in extraction batches: each of one namespace and conversation, in order, at most ``size``."""
    groups: dict[tuple[str, str | None], list[MemCube]] = {}
    for turn in turns:
        groups.setdefault((turn.namespace, turn.source.uri), []).append(turn)
    return [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)]


def _counts(facts: list[FactOutcome]) -> dict[str, int]:
    counts = {action: 0 for action in ("add", "update", "contradict", "noop", "rejected")}
    for fact in facts:
        counts[fact.action] += 1
    counts["traced"] = sum(1 for f in facts if f.sources)
    return counts
