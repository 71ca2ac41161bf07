"""The kernel's ``chat``: retrieve the principal's memories, hand them to the model, answer, remember.

An open model gets the memories as attention state: KV segments already stored in the prefix
tree (by ``cache`` or the scheduler) are loaded, the rest computed for this request only. A
closed model gets the same memories as the byte-stable simulated-KV prompt prefix. With a working
set for the namespace (``kernel.workset``) its members lead, in canonical order, and the question's
extra hits follow (canonical order too), so the working set's stored KV serves every question.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from memcubed.backends.models.base import KVLanguageModel, LanguageModel
from memcubed.cube.model import CubeKind, MemCube, Source
from memcubed.engines.kvcache import MEMORY_NOTICE, CubeText, KVCacheEngine, KVPrefix, ordered, with_notice, with_prefix
from memcubed.errors import ModelUnavailable
from memcubed.kernel import acl
from memcubed.kernel.base import utcnow
from memcubed.kernel.facts import FACT_TAG
from memcubed.kernel.remember import RememberOps
from memcubed.kernel.validation import check_text, parse
from memcubed.kernel.workset import WorkingSetOps
from memcubed.schemas.chat import ChatRequest, ChatResult
from memcubed.schemas.ops import CubeCreate, PrincipalPublic, SearchRequest

__all__ = ["ChatContext", "ChatOps"]


@dataclass(frozen=True)
class ChatContext:
    """What ``chat_prepare`` found for a conversation's last user turn (see ``ChatOps.chat_prepare``).

    Attributes:
        request: the validated request.
        memories: the memories for this turn in prompt order: canonical order, or with a working set its
            members (canonical order) then the extras (canonical order).
        activation: the activation cube whose sources they are, when the request named one.
        retrieve_ms: how long validation and retrieval took.
        working_set: the working set cube leading the memories, when one is served.
        skipped: why the namespace's working set was not served (changed or unreadable member), if so.
        evidence: for each extracted fact used, the turn cubes it came from (they are among ``memories``).
    """

    request: ChatRequest
    memories: list[CubeText]
    activation: MemCube | None
    retrieve_ms: float
    working_set: MemCube | None = None
    skipped: str | None = None
    evidence: dict[str, list[str]] = field(default_factory=dict)

    @property
    def used(self) -> list[str]:
        """The ids of the memories, in the order the model sees them."""
        return [t.id for t in self.memories]

    @property
    def sources(self) -> dict[str, str]:
        """Where each memory came from, as the model sees it (``type[:uri][#ref]``): a turn names its
        conversation and turn, a fact the turns it was extracted from (which are among the memories)."""
        return {t.id: t.source for t in self.memories}

    def prefixed(self, messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``messages`` led by the memories as the byte-stable simulated-KV prefix (a leading system
        message with text content is extended; every other field of every message is kept)."""
        return [dict(m) for m in with_prefix(messages, self.memories, canonical=False)]


class ChatOps(RememberOps, WorkingSetOps):
    """``chat`` = retrieve + inject (or simulate) + generate + optionally remember.

    ``chat_prepare`` and ``chat_remember`` are the retrieval and remembering halves on their own, for
    callers that generate elsewhere (the OpenAI-compatible proxy streams its upstream's answer).
    """

    def chat(self, request: ChatRequest | Mapping[str, Any], *, principal: str,
             lm: KVLanguageModel | LanguageModel) -> ChatResult:
        """Answer the last user turn of ``request.messages`` with the principal's memories.

        Memories are the sources of ``activation_id`` when given, else the top ``k`` search hits
        for the last user turn (rights and filters applied in the search), led by the principal's
        working set of the namespace unless ``use_working_set`` is false (hits already in it are not
        repeated; a working set that is not usable now is skipped, never served stale). With
        ``remember`` the user turn and the reply are stored as plaintext memories of the principal.

        Raises:
            ValidationError: malformed request (no final user turn, k out of range, a turn to remember
                longer than ``max_text_chars``, ...); raised before the model runs.
            AccessDenied / NotFound: the activation cube or one of its sources is not readable.
            Conflict: the activation cube is stale.
            ModelUnavailable: the activation cube belongs to another model.
        """
        context = self.chat_prepare(request, principal=principal)
        req, texts, cube = context.request, context.memories, context.activation
        messages = [m.model_dump() for m in req.messages]
        result: ChatResult
        if isinstance(lm, KVLanguageModel):
            result = self._chat_kv(messages, texts, cube, lm, req.max_new_tokens)
            if result.via == "kv":
                result.computed_tokens = result.prefix_tokens - result.reused_tokens
        else:
            began = time.perf_counter()
            text = lm.complete(context.prefixed(messages) if texts else messages, max_new_tokens=req.max_new_tokens)
            total_ms = (time.perf_counter() - began) * 1000
            result = ChatResult(text=text, via="simulated" if texts else "none", ttft_ms=total_ms, total_ms=total_ms)
        result.used = context.used
        result.activation_id = cube.id if cube else None
        result.working_set_id = context.working_set.id if context.working_set else None
        result.working_set_skipped = context.skipped
        result.retrieve_ms = context.retrieve_ms
        result.evidence = context.evidence
        result.sources = context.sources
        result.remembered = [c.id for c in self.chat_remember(context, result.text, principal=principal)]
        return result

    def chat_prepare(self, request: ChatRequest | Mapping[str, Any], *, principal: str) -> ChatContext:
        """Validate a chat request and retrieve its memories, without generating or writing anything.

        Raises:
            ValidationError: malformed request, or ``remember`` with a user turn that could not be stored.
            AccessDenied / NotFound: the activation cube or one of its sources is not readable.
            Conflict: the activation cube is stale.
        """
        actor = self._actor(principal)
        req = parse(ChatRequest, dict(request) if isinstance(request, Mapping) else request)
        if req.remember:  # refuse now what remembering would refuse after the model has run
            check_text(req.messages[-1].content, self.settings.max_text_chars)
        started = time.perf_counter()
        cube = self._activation(req.activation_id, actor) if req.activation_id is not None else None
        working, lead, skipped = (self._serving_working_set(actor, req.namespace)
                                  if cube is None and req.use_working_set else (None, [], None))
        if working is not None:
            self._touch([working], actor)
        members = {t.id for t in lead}
        recalled, evidence = self._recall(req, actor, cube)
        texts = [*lead, *[t for t in recalled if t.id not in members]]
        return ChatContext(request=req, memories=texts, activation=cube,
                           retrieve_ms=(time.perf_counter() - started) * 1000, working_set=working, skipped=skipped,
                           evidence=evidence)

    def chat_remember(self, context: ChatContext, reply: str, *, principal: str) -> list[MemCube]:
        """Store the user turn and ``reply`` as the principal's memories (when the request asked to remember),
        in one transaction; return them (none when not asked).

        With ``settings.remember_conversations`` every conversation is remembered through ``remember``
        (see ``remember_conversation``), asked or not.

        Raises:
            ValidationError: the reply cannot be stored (too long, a NUL character).
        """
        if self.settings.remember_conversations:
            return self.remember_conversation(context.request, reply, principal=principal)
        if not context.request.remember:
            return []
        return self._remember(context.request, reply, self._actor(principal))

    def _recall(self, req: ChatRequest, actor: PrincipalPublic, cube: MemCube | None
                ) -> tuple[list[CubeText], dict[str, list[str]]]:
        """The memories for this turn, in canonical order (the order every prefix uses): facts that still
        hold now, each with the turns it came from as evidence, and the other hits."""
        if cube is not None:
            self._touch([cube], actor)
            return ordered(self._source_texts(cube, actor)), {}
        if req.k == 0:
            return [], {}
        query = req.messages[-1].content[:10_000]
        # Untrusted hits are dropped below, so ask for more than k (at most 4x) to still fill k.
        wanted = req.k if actor.trust == "all" else req.k * 4
        found = self.search(SearchRequest(query=query, namespace=req.namespace, k=wanted, filters=req.filters,
                                          question_date=req.question_date), principal=actor.name)
        # Consent: a readable cube enters the prompt only if the trust policy admits it (see acl.trusted);
        # the hits carry no grants for non-sharers, so decide on the stored cubes.
        stored = self.store.load_cubes([h.cube.id for h in found.hits])
        now = utcnow()
        used = [h.cube for h in found.hits if h.cube.kind is CubeKind.PLAINTEXT and h.cube.text
                and h.cube.id in stored and acl.trusted(stored[h.cube.id], actor)
                and (h.cube.valid_to is None or h.cube.valid_to > now)][: req.k]  # ended facts stay out
        turns, evidence = self._evidence(used, actor)
        return ordered([CubeText.of(c) for c in [*used, *turns]]), evidence

    def _evidence(self, used: list[MemCube], actor: PrincipalPublic) -> tuple[list[MemCube], dict[str, list[str]]]:
        """The turn cubes the facts among ``used`` came from (readable and trusted: the facts' rights
        checks already required read on them), so the model sees what was said behind each fact."""
        facts = [c for c in used if FACT_TAG in c.tags and c.derived_from]
        sources = self.store.load_cubes(list(dict.fromkeys(r.id for c in facts for r in c.derived_from)))
        evidence = {c.id: [r.id for r in c.derived_from if r.id in sources and sources[r.id].text
                           and acl.trusted(sources[r.id], actor)] for c in facts}
        seen = {c.id for c in used}
        turns = [sources[i] for i in dict.fromkeys(i for ids in evidence.values() for i in ids) if i not in seen]
        self._touch(turns, actor)
        return [self._present(t, actor) for t in turns], evidence

    def _chat_kv(self, messages: list[dict[str, Any]], texts: list[CubeText], cube: MemCube | None,
                 lm: KVLanguageModel, max_new_tokens: int) -> ChatResult:
        """Open model: the memories' KV (stored segments loaded, the rest computed now) before the chat."""
        engine = KVCacheEngine(lm)
        began = time.perf_counter()
        prefix: KVPrefix | None = None
        reused_tokens = 0
        if cube is not None:
            if cube.model != lm.fingerprint:
                raise ModelUnavailable(f"activation cube {cube.id} was compiled by another model",
                                       field="model", expected=cube.model, actual=lm.fingerprint)
            prefix = engine.load(cube.segments, self.blobs)
            reused_tokens = prefix.token_count
        elif texts:
            index = self._segment_index(engine, texts)
            # Segments computed for one chat are not stored: deciding what is hot enough to keep is
            # the job of ``cache``, the working set and the scheduler; every distinct hit set would add blobs.
            # ``texts`` are already in prompt order (a working set first), which the prefix keys follow.
            prefix, report = engine.build(texts, blobs=self.blobs, index=index, persist=False, canonical=False)
            reused_tokens = sum(s.token_count for s in prefix.segments[: report.reused])
        prefill_ms = (time.perf_counter() - began) * 1000
        # The injected blocks precede the chat template, so the notice about them leads the system message.
        turns = with_notice(messages, MEMORY_NOTICE) if prefix else messages
        gen = engine.generate(lm.chat_ids(turns), prefix, max_new_tokens=max_new_tokens)
        return ChatResult(text=gen.text.strip(), via="kv" if prefix else "none",
                          prefix_tokens=prefix.token_count if prefix else 0, reused_tokens=reused_tokens,
                          prefill_ms=prefill_ms, ttft_ms=prefill_ms + gen.ttft_s * 1000,
                          total_ms=prefill_ms + gen.total_s * 1000)

    def _remember(self, req: ChatRequest, reply: str, actor: PrincipalPublic) -> list[MemCube]:
        source = Source(type="conversation", uri=f"chat:{req.conversation}" if req.conversation else None)
        turns = [(req.messages[-1].content, "user"), (reply, "assistant")]
        items = [CubeCreate(text=text, namespace=req.namespace, source=source, tags=["chat", role])
                 for text, role in turns if text.strip()]
        return self.add_many(items, principal=actor.name)

