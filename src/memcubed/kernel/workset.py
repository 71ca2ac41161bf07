"""The working set: per (principal, namespace), hot memories kept as ONE exact KV prefix that ``chat`` reuses.

Retrieved sets differ per question, so they rarely share a prefix in the KV prefix tree. A working set
fixes one: its members, in canonical order, always lead the prompt, and each question's extra hits
follow. On the KV path the working set's stored segments are loaded and only the extras are computed
(exact: the extras attend to the working set exactly as in one pass); on the simulated path the same
bytes lead every prompt, so an upstream's prompt cache hits.

A working set is an activation cube owned by its principal, marked by its source (``derived`` /
``working-set``); the store's meta maps (principal, namespace) to its id. It replaces the previous one,
which is archived. Rights flow through derivation at use time: a member changed, deleted, forgotten,
archived or no longer readable (or admitted by the trust policy) makes the working set unusable, and
chat then skips it; it is never served stale. Which memories form it is policy: the scheduler owns that
choice (``working_set`` decisions, ``engines.scheduler.workset``); :meth:`WorkingSetOps.hottest_members`
returns the same choice for a caller that sets one itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memcubed.backends.base import IndexEntry
from memcubed.backends.models.base import KVLanguageModel, LanguageModel
from memcubed.cube.ids import new_cube_id
from memcubed.cube.model import CubeKind, CubeState, DerivedRef, MemCube, Source
from memcubed.engines.kvcache import CubeText, KVCacheEngine, ordered
from memcubed.errors import BudgetExceeded, Conflict, ValidationError
from memcubed.kernel import acl
from memcubed.kernel.activation import ActivationOps
from memcubed.kernel.base import Progress, bump, utcnow
from memcubed.kernel.events import Event
from memcubed.kernel.jobs import JobKind
from memcubed.kernel.validation import parse
from memcubed.kernel.workset_state import WORKING_SET_URI, pointer, unusable, working_set_cube
from memcubed.schemas.ops import PrincipalPublic
from memcubed.schemas.workset import WorkingSet, WorkingSetInput, WorkingSetRef

__all__ = ["WORKING_SET_URI", "WorkingSetOps", "token_count"]

_SET, _CLEAR = "working_set.set", "working_set.clear"


class WorkingSetOps(ActivationOps):
    """``set_working_set``, ``working_set``, ``clear_working_set`` and the use-time check ``chat`` runs."""

    def set_working_set(self, namespace: str = "default", cube_ids: Sequence[str] | None = None, *,
                        principal: str, lm: KVLanguageModel | LanguageModel) -> WorkingSet:
        """Make ``cube_ids`` the principal's working set of ``namespace``, replacing (archiving) the previous one.

        An open model compiles the members' KV in canonical order, reusing stored prefix-tree segments;
        a closed model needs none (its prompts lead with the same bytes) and its token count is estimated
        (4 bytes a token). Without ``cube_ids`` the default selection (:meth:`hottest_members`) picks them.
        The same members at the same versions for the same model return the current working set as is.

        Raises:
            ValidationError: a member that is not active plaintext of ``namespace``, or not admitted by the
                principal's trust policy.
            NotFound: a member the principal cannot read (reported like a missing one).
            BudgetExceeded: more members or tokens than ``working_set_max_cubes`` / ``_max_tokens``.
            Conflict: a member changed while the working set was compiled (try again), or the default
                selection found nothing used yet.
        """
        actor = self._actor(principal)
        inp = parse(WorkingSetInput, {"namespace": namespace, "cube_ids": cube_ids})
        ids = inp.cube_ids if inp.cube_ids is not None else self._hottest(inp.namespace, actor, lm)
        if not ids:
            raise Conflict(f"no memory of namespace {inp.namespace!r} has been used yet: name the members",
                           namespace=inp.namespace)
        sources = self._working_set_sources(ids, inp.namespace, actor)
        texts = ordered([CubeText.of(s) for s in sources])
        tokens = sum(token_count(lm, t) for t in texts)
        if tokens > self.settings.working_set_max_tokens:
            raise BudgetExceeded(f"the working set would take {tokens} tokens, over working_set_max_tokens "
                                 f"{self.settings.working_set_max_tokens}", field="cube_ids", tokens=tokens,
                                 limit=self.settings.working_set_max_tokens)
        model = lm.fingerprint if isinstance(lm, KVLanguageModel) else None
        wanted = [DerivedRef(id=t.id, version=t.version) for t in texts]
        current = self._working_set_cube(actor.name, inp.namespace)
        if (current is not None and current.state is CubeState.ACTIVE and current.derived_from == wanted
                and current.model == model):
            return self._described(current, actor)
        if isinstance(lm, KVLanguageModel):
            fields = self._compile(sources, lm, "exact", "float32", None)
        else:
            fields = {"derived_from": wanted, "model": None, "payload": None, "segments": [],
                      "meta": {"tokens": tokens, "tokens_estimated": True}}
        now = utcnow()
        cube = MemCube(id=new_cube_id(), kind=CubeKind.ACTIVATION, namespace=inp.namespace, owner=actor.name,
                       source=Source(type="derived", uri=WORKING_SET_URI), created_at=now, updated_at=now, version=1,
                       importance=max(s.importance for s in sources), **fields)
        with self._write() as pending:
            self._check_unchanged(sources)
            if cube.segments:
                self._index_segments(fields)
            self.store.insert_cube(cube, IndexEntry())
            self._commit(pending, cube, _SET, actor, {"sources": [r.id for r in cube.derived_from],
                                                      "tokens": cube.meta["tokens"]})
            old = self._retire(actor, inp.namespace, pending, replaced_by=cube.id)
            self.store.set_meta(pointer(actor.name, inp.namespace), cube.id)
        if old is not None:
            self._release_blobs([d for d in old.segments if d not in cube.segments])
        return self._described(cube, actor)

    def working_set(self, namespace: str = "default", *, principal: str) -> WorkingSet:
        """Return the principal's working set of ``namespace`` (``cube`` None when there is none) and whether
        chat would serve it now (``usable``, else ``reason``). Records no access.

        Raises:
            ValidationError: a malformed namespace.
        """
        actor = self._actor(principal)
        inp = parse(WorkingSetRef, {"namespace": namespace})
        cube = self._working_set_cube(actor.name, inp.namespace)
        if cube is None:
            return WorkingSet(namespace=inp.namespace, principal=actor.name)
        return self._described(cube, actor)

    def clear_working_set(self, namespace: str = "default", *, principal: str) -> WorkingSet:
        """Drop the principal's working set of ``namespace``: its cube is archived (its KV released when no
        live cube uses it) and chat goes back to plain retrieval. Clearing when there is none does nothing.

        Returns the working set as cleared (``cube`` None when there was none).

        Raises:
            ValidationError: a malformed namespace.
        """
        actor = self._actor(principal)
        inp = parse(WorkingSetRef, {"namespace": namespace})
        with self._write() as pending:
            old = self._retire(actor, inp.namespace, pending, replaced_by=None)
            if old is not None:
                self.store.set_meta(pointer(actor.name, inp.namespace), "")
        if old is None:
            return WorkingSet(namespace=inp.namespace, principal=actor.name)
        self._release_blobs(old.segments)
        archived = self.store.load_cube(old.id)
        return self._described(archived or old, actor)

    def hottest_members(self, namespace: str = "default", *, principal: str,
                        lm: KVLanguageModel | LanguageModel) -> list[str]:
        """The default selection, the scheduler's own: of the namespace's readable, trusted, active plaintext
        memories the principal has read, the members a scheduler ``working_set`` decision would choose now
        (its decayed reads by the principal, whole co-retrieved sets weighted up, best value per token first,
        ties by id), taken while they fit the token and cube budgets.

        It is what ``set_working_set`` uses without ``cube_ids``. Fold buffered accesses first
        (``flush_events``) for up-to-date signals.

        Raises:
            ValidationError: a malformed namespace.
        """
        actor = self._actor(principal)
        return self._hottest(parse(WorkingSetRef, {"namespace": namespace}).namespace, actor, lm)

    def _set_working_set_job(self) -> JobKind:
        """``set_working_set`` as a background job (what a scheduler ``working_set`` decision submits): checked
        at submit, compiled by whichever worker claims it, as the principal it was submitted for."""
        def check(params: WorkingSetInput, actor: PrincipalPublic) -> None:
            self.models.check(params.model)
            if params.cube_ids is not None:
                self._working_set_sources(params.cube_ids, params.namespace, actor)

        def run(params: WorkingSetInput, principal: str, progress: Progress) -> dict[str, Any]:
            ws = self.set_working_set(params.namespace, params.cube_ids, principal=principal,
                                      lm=self.models.get(params.model))
            return {"cube_id": ws.cube.id if ws.cube else None, "members": ws.members, "tokens": ws.tokens}

        return JobKind(params=WorkingSetInput, check=check, run=run)

    # -- internals -----------------------------------------------------------------------------------------
    def _working_set_sources(self, cube_ids: Sequence[str], namespace: str, actor: PrincipalPublic) -> list[MemCube]:
        """The members named: within the cube budget, each readable, trusted, active plaintext of ``namespace``
        (what ``set_working_set`` and its registry pre-check refuse)."""
        limit = self.settings.working_set_max_cubes
        if len(set(cube_ids)) > limit:
            raise BudgetExceeded(f"a working set holds at most {limit} memories", field="cube_ids",
                                 limit=limit, requested=len(set(cube_ids)))
        sources = self._plaintext_sources(cube_ids, actor, op="set_working_set", done="working set")
        for source in sources:
            if source.namespace != namespace:
                raise ValidationError(f"cube {source.id} is not in namespace {namespace!r}", id=source.id)
            if not acl.trusted(source, actor):
                raise ValidationError(f"cube {source.id} is not admitted by your trust policy: accept the share "
                                      "first", id=source.id)
        return sources

    def _hottest(self, namespace: str, actor: PrincipalPublic, lm: KVLanguageModel | LanguageModel) -> list[str]:
        """The default selection: the scheduler's choice (``SchedulerStateOps._hottest``, over its signals)."""
        raise NotImplementedError

    def _working_set_cube(self, principal: str, namespace: str) -> MemCube | None:
        return working_set_cube(self, principal, namespace)

    def _retire(self, actor: PrincipalPublic, namespace: str, pending: list[Event], *,
                replaced_by: str | None) -> MemCube | None:
        """Archive the current working set (inside the write); return it as it was, or None."""
        old = self._working_set_cube(actor.name, namespace)
        if old is None:
            return None
        if old.state not in (CubeState.ARCHIVED, CubeState.DELETED):
            new = bump(old, state=CubeState.ARCHIVED, payload=None, segments=[])
            self.store.replace_cube(new)
            self._commit(pending, new, _SET if replaced_by else _CLEAR, actor,
                         {"archived": True, "replaced_by": replaced_by})
        return old

    def _described(self, cube: MemCube, actor: PrincipalPublic) -> WorkingSet:
        reason = self._unusable(cube, actor)
        return WorkingSet(namespace=cube.namespace, principal=actor.name, cube=self._present(cube, actor),
                          members=[r.id for r in cube.derived_from], tokens=int(cube.meta.get("tokens", 0)),
                          usable=reason is None, reason=reason)

    def _unusable(self, cube: MemCube, actor: PrincipalPublic) -> str | None:
        return unusable(self, cube, actor)

    def _serving_working_set(self, actor: PrincipalPublic, namespace: str) -> tuple[MemCube | None, list[CubeText],
                                                                                    str | None]:
        """For chat: the working set to serve, its members' exact versions in canonical order, and why none
        is served (None when there is no working set, or it is served)."""
        cube = self._working_set_cube(actor.name, namespace)
        if cube is None:
            return None, [], None
        reason = self._unusable(cube, actor)
        if reason is not None:
            return None, [], reason
        current = self.store.load_cubes([ref.id for ref in cube.derived_from])
        texts: list[CubeText] = []
        for ref in cube.derived_from:
            member = current[ref.id]
            if member.version != ref.version:  # a tag, share or importance change: read the version compiled
                entry = self.store.load_version(ref.id, ref.version)
                if entry is None or entry.cube.text is None:
                    return None, [], f"member {ref.id} v{ref.version} is gone"
                member = entry.cube
            texts.append(CubeText.of(member))
        return cube, ordered(texts), None


def token_count(lm: KVLanguageModel | LanguageModel, text: CubeText) -> int:
    """Tokens ``text`` occupies in a prefix: exact for an open model, estimated (4 bytes a token) otherwise."""
    if isinstance(lm, KVLanguageModel):
        return len(KVCacheEngine(lm).segment_ids(text.rendered))
    return len(text.rendered.encode("utf-8")) // 4 + 1
