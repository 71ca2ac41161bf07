"""Hypothesis stateful test of the kernel's invariants against a simple model of rights and versions.

After every step: no principal reads (get, history, get_version, search in every mode) a cube it has
no right to; versions are 1..n without gaps and every old version reads back as it was written;
each mutation wrote exactly one audit record; the audit chain verifies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

import memcubed
from memcubed import AccessDenied, MemCube, NotFound, Right, UnknownPrincipal, ValidationError, VersionConflict
from memcubed.backends.embedders import TransformersEmbedder
from memcubed.testing.backends import Backend

USERS = ["alice", "bob", "carol"]
ACTORS = ["admin", *USERS]
WORD = "zephyr"  # in every text, so a lexical search for it must return exactly the readable cubes


@dataclass
class ModelCube:
    owner: str
    text: str | None
    version: int = 1
    acl_version: int = 0
    grants: dict[str, Right] = field(default_factory=dict)
    deleted: bool = False
    forgotten: bool = False
    versions: dict[int, dict[str, Any]] = field(default_factory=dict)  # as admin read it right after writing

    def right(self, who: str) -> Right | None:
        if who == "admin" or who == self.owner:
            return Right.ADMIN
        return self.grants.get(who)


class KernelMachine(RuleBasedStateMachine):
    """Random operations by random principals, checked against ``ModelCube``s."""

    cubes = Bundle("cubes")
    new_location: Callable[[], str]
    embedder: TransformersEmbedder

    @initialize()
    def open_store(self) -> None:
        self.mc = memcubed.open(type(self).new_location(), embedder=self.embedder)
        for name in USERS:
            self.mc.create_principal(name)
        self.model: dict[str, ModelCube] = {}
        self.audit_seq = self.mc.audit()[-1].seq

    def teardown(self) -> None:
        if hasattr(self, "mc"):
            self.mc.close()

    # -- helpers ----------------------------------------------------------
    def _as(self, who: str) -> memcubed.Memcubed:
        return self.mc.as_principal(who)

    def _expect_one_audit(self, op: str, cube_id: str | None, version: int | None) -> None:
        records = self.mc.audit(after_seq=self.audit_seq)
        assert [(r.op, r.cube_id, r.version) for r in records] == [(op, cube_id, version)]
        self.audit_seq = records[0].seq

    def _expect_no_audit(self) -> None:
        assert self.mc.audit(after_seq=self.audit_seq) == []

    def _expect_denied(self, who: str, op: str, cube_id: str) -> None:
        """A refused call writes exactly one ``denied`` record (and changes nothing else)."""
        records = self.mc.audit(after_seq=self.audit_seq)
        assert [(r.op, r.principal, r.cube_id, r.details["operation"]) for r in records] == [
            ("denied", who, cube_id, op)]
        self.audit_seq = records[0].seq

    def _remember(self, cube_id: str) -> None:
        """Check the newest version against the model and keep it, to compare on every later step."""
        model = self.model[cube_id]
        entry = self.mc.get_version(cube_id, model.version)
        cube = entry.cube
        assert (cube.version, cube.owner, cube.text) == (model.version, model.owner, model.text)
        assert {g.principal: g.right for g in cube.acl} == model.grants
        assert (cube.state.value == "deleted") == model.deleted
        assert cube.forgotten == model.forgotten
        model.versions[model.version] = entry.model_dump(exclude={"cube": {"stats"}})

    def _outcome(self, cube_id: str, who: str, needed: Right, *, on_deleted: bool = False) -> type[Exception] | None:
        """The error the kernel must raise for this call, or None when the model lets it run.

        The kernel loads (NotFound for a deleted cube, unless the operation reaches deleted cubes, and for
        a cube the caller cannot read: it must look missing), then authorizes (AccessDenied for a reader
        lacking a stronger right), then refuses to forget a tombstone twice (NotFound).
        """
        model = self.model[cube_id]
        held = model.right(who)
        if (model.deleted and not on_deleted) or held is None:
            return NotFound
        if held < needed:
            return AccessDenied
        return NotFound if model.forgotten else None

    def _open(self, cube_id: str, who: str, needed: Right) -> bool:
        return self._outcome(cube_id, who, needed) is None

    def _attempt(self, cube_id: str, who: str, needed: Right, call: Any, op: str,
                 apply: Any, *, on_deleted: bool = False, acl_change: bool = False) -> bool:
        """Run ``call`` once; it must succeed exactly when the model allows it, writing one record and one
        version (an ACL change: one ``acl_version`` and the same content version)."""
        model = self.model[cube_id]
        error = self._outcome(cube_id, who, needed, on_deleted=on_deleted)
        if error is None:
            returned = call()
            apply(model)
            if acl_change:
                model.acl_version += 1
                assert returned.acl_version == model.acl_version
            else:
                model.version += 1
            assert returned.version == model.version
            self._expect_one_audit(op, cube_id, model.version)
            if not acl_change:
                self._remember(cube_id)
            return True
        with pytest.raises(error) as info:
            call()
        assert type(info.value) is error
        if error is AccessDenied:
            self._expect_denied(who, op, cube_id)
        else:
            self._expect_no_audit()
        return False

    # -- rules ------------------------------------------------------------
    @rule(target=cubes, who=st.sampled_from(ACTORS), n=st.integers(0, 999))
    def add(self, who: str, n: int) -> str:
        text = f"{WORD} note {n} by {who}"
        cube = self._as(who).add(text)
        self.model[cube.id] = ModelCube(owner=who, text=text)
        self._expect_one_audit("add", cube.id, 1)
        self._remember(cube.id)
        return cube.id

    @rule(cube_id=cubes, who=st.sampled_from(ACTORS), n=st.integers(0, 999), stale=st.booleans())
    def update(self, cube_id: str, who: str, n: int, stale: bool) -> None:
        model = self.model[cube_id]
        text = f"{WORD} revised {n}"
        if stale and model.version > 1 and self._open(cube_id, who, Right.WRITE):
            with pytest.raises(VersionConflict):
                self._as(who).update(cube_id, text=text, expected_version=model.version - 1)
            self._expect_no_audit()
            return
        self._attempt(cube_id, who, Right.WRITE,
                      lambda: self._as(who).update(cube_id, text=text, expected_version=model.version),
                      "update", lambda m: setattr(m, "text", text))

    @rule(cube_id=cubes, who=st.sampled_from(ACTORS), grantee=st.sampled_from(ACTORS),
          right=st.sampled_from(list(Right)))
    def share(self, cube_id: str, who: str, grantee: str, right: Right) -> None:
        model = self.model[cube_id]
        needed = Right.ADMIN if right is Right.ADMIN else Right.SHARE
        call: Callable[[], MemCube] = lambda: self._as(who).share(cube_id, grantee, right)  # noqa: E731
        if grantee == model.owner and self._open(cube_id, who, needed):
            with pytest.raises(ValidationError):
                call()
            self._expect_no_audit()
            return
        self._attempt(cube_id, who, needed, call, "share", lambda m: m.grants.__setitem__(grantee, right),
                      acl_change=True)

    @rule(cube_id=cubes, who=st.sampled_from(ACTORS), grantee=st.sampled_from(USERS))
    def revoke(self, cube_id: str, who: str, grantee: str) -> None:
        model = self.model[cube_id]
        call: Callable[[], MemCube] = lambda: self._as(who).revoke(cube_id, grantee)  # noqa: E731
        if grantee not in model.grants and self._open(cube_id, who, Right.SHARE):
            assert call().version == model.version
            self._expect_no_audit()
            return
        self._attempt(cube_id, who, Right.SHARE, call, "revoke", lambda m: m.grants.pop(grantee), acl_change=True)

    @rule(cube_id=cubes, who=st.sampled_from(ACTORS))
    def delete(self, cube_id: str, who: str) -> None:
        self._attempt(cube_id, who, Right.ADMIN, lambda: self._as(who).delete(cube_id), "delete",
                      lambda m: setattr(m, "deleted", True))

    @rule(cube_id=cubes, who=st.sampled_from(ACTORS))
    def forget(self, cube_id: str, who: str) -> None:
        def apply(m: ModelCube) -> None:
            m.deleted, m.forgotten, m.text = True, True, None
            for entry in m.versions.values():
                entry["cube"]["text"] = None

        self._attempt(cube_id, who, Right.ADMIN, lambda: self._as(who).forget(cube_id), "forget", apply,
                      on_deleted=True)

    @rule(who=st.sampled_from(ACTORS))
    def unknown_principal_is_refused(self, who: str) -> None:
        with pytest.raises(UnknownPrincipal):
            self._as(who + "-ghost").search(WORD)
        self._expect_no_audit()

    # -- invariants -------------------------------------------------------
    @invariant()
    def reads_follow_rights(self) -> None:
        if not hasattr(self, "model"):
            return
        for who in ACTORS:
            client = self._as(who)
            visible = {cid for cid, m in self.model.items()
                       if m.right(who) is not None and not m.deleted}
            for mode in ("lexical", "vector"):
                found = {h.cube.id for h in client.search(WORD, mode=mode, k=1000).hits}
                assert found == visible, (who, mode)
            for cube_id, m in self.model.items():
                if m.right(who) is None:
                    for method, args in ((client.get, ()), (client.history, ()), (client.get_version, (1,))):
                        with pytest.raises(NotFound):  # an unreadable cube looks missing
                            method(cube_id, *args)
                elif not m.deleted:
                    assert client.get(cube_id).text == m.text

    @invariant()
    def versions_are_gapless_and_unchanged(self) -> None:
        if not hasattr(self, "model"):
            return
        for cube_id, m in self.model.items():
            history = self.mc.history(cube_id)
            assert [h.version for h in history] == list(range(1, m.version + 1))
            assert sorted(m.versions) == list(range(1, m.version + 1))
            for h in history:
                assert h.model_dump(exclude={"cube": {"stats"}}) == m.versions[h.version]

    @invariant()
    def audit_chain_verifies(self) -> None:
        if not hasattr(self, "model"):
            return
        report = self.mc.verify_audit()
        assert report.ok, report.problems
        self._expect_no_audit()


def test_kernel_invariants(backend: Backend, embedder: TransformersEmbedder) -> None:
    KernelMachine.new_location = backend.location
    KernelMachine.embedder = embedder
    run_state_machine_as_test(KernelMachine, settings=settings(max_examples=20, stateful_step_count=25,
                                                               deadline=None))
