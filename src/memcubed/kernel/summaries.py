"""Per-session summaries of remembered turns, written only when a summariser model is configured.

One summary cube per (owner, conversation, session), derived from the session's turns (so its rights
flow from them); a later batch of the same session writes a new version of it, history kept.
"""

from __future__ import annotations

import uuid
from typing import Any

from memcubed.backends.base import IndexEntry
from memcubed.cube.ids import owned_cube_id
from memcubed.cube.model import CubeState, DerivedRef, MemCube, Right, Source
from memcubed.engines.text.extract import PromptTurn, summary_messages
from memcubed.errors import MemcubedError
from memcubed.kernel import limits
from memcubed.kernel.base import bump
from memcubed.kernel.facts import FactOps, said
from memcubed.kernel.validation import check_text
from memcubed.schemas.ops import CubeCreate, PrincipalPublic

__all__ = ["SUMMARY_TAG", "SummaryOps"]

SUMMARY_TAG = "summary"
_SESSIONS = uuid.UUID("6d656d63-7375-6d6d-0000-72656d656d62")


class SummaryOps(FactOps):
    """Writing session summaries for ``remember``."""

    def _summarize(self, turns: list[MemCube], actor: PrincipalPublic) -> tuple[list[str], list[str]]:
        """Summarise each session among ``turns`` (turns without a session are left out); return the
        summary cube ids written and the reasons of the sessions that failed (nothing else is undone)."""
        model = self.settings.summarizer
        assert model is not None
        sessions: dict[tuple[str, str, str], list[MemCube]] = {}
        for turn in turns:
            session = turn.meta.get("session_id")
            if isinstance(session, str) and turn.source.uri:
                sessions.setdefault((turn.namespace, turn.source.uri, session), []).append(turn)
        written: list[str] = []
        failures: list[str] = []
        for (namespace, conversation, session), members in sessions.items():
            key = str(uuid.uuid5(_SESSIONS, f"{conversation}\n{session}"))
            cube_id = owned_cube_id(actor.name, key)
            known = self.store.load_cube(cube_id)
            if known is not None and (known.forgotten or known.state is not CubeState.ACTIVE):
                failures.append(f"session {session}: its summary was {known.state.value}; not rewritten"[:200])
                continue
            sources = [*self._readable_turns(known, actor), *members]
            prompt = [PromptTurn(key=f"t{n}", speaker=str(t.meta.get("speaker", t.owner)), time=t.source.occurred_at,
                                 text=said(t)) for n, t in enumerate(sources, start=1)]
            try:
                text = self.models.get(model).complete(summary_messages(prompt), max_new_tokens=256).strip()
                if not text:
                    raise ValueError("the summariser answered nothing")
                check_text(text, self.settings.max_text_chars)
            except (MemcubedError, ValueError) as exc:
                failures.append(f"session {session}: {getattr(exc, 'code', None) or exc}"[:200])
                continue
            refs = [DerivedRef(id=t.id, version=t.version) for t in members]
            try:
                written.append(self._write_summary(known, key, text, refs, (namespace, conversation, session),
                                                   members[-1], actor))
            except MemcubedError as exc:  # the turns are stored; only this summary was not
                failures.append(f"session {session}: {exc.code}"[:200])
        return written, failures

    def _write_summary(self, known: MemCube | None, key: str, text: str, refs: list[DerivedRef],
                       where: tuple[str, str, str], last: MemCube, actor: PrincipalPublic) -> str:
        namespace, conversation, session = where
        if known is not None:
            return self._resummarize(known, text, refs, actor).id
        create = CubeCreate(text=text, namespace=namespace, tags=[SUMMARY_TAG], id=key, derived_from=refs,
                            source=Source(type="summary", uri=conversation, ref=session[:256],
                                          occurred_at=last.source.occurred_at),
                            meta={"summarizer": self.settings.summarizer})
        return self.add_many([create], principal=actor.name)[0].id

    def _readable_turns(self, summary: MemCube | None, actor: PrincipalPublic) -> list[MemCube]:
        if summary is None:
            return []
        found = self.store.load_cubes([r.id for r in summary.derived_from])
        return [c for c in found.values() if c.text and not c.forgotten and c.owner == actor.name]

    def _resummarize(self, summary: MemCube, text: str, refs: list[DerivedRef], actor: PrincipalPublic) -> MemCube:
        vector, chunks = self._embed([text])[0], self._embed_chunks([text])[0]
        with self._write() as pending:
            old = self._load(summary.id, actor, Right.WRITE)
            fields: dict[str, Any] = {"text": text, "derived_from": list(dict.fromkeys([*old.derived_from, *refs]))}
            new = bump(old, **fields)
            self.store.replace_cube(new, reindex=IndexEntry(context=self._context(new, before=new.id), vector=vector,
                                                                chunks=chunks))
            self.store.add_derivations(new.id, refs)
            limits.check_quota(self.store, self.settings, new.owner)
            self._commit(pending, new, "update", actor, {"fields": sorted(fields), "by": "remember"})
            self._mark_derived_stale(new, actor, pending)
        return new
