"""Moving a store to another embedder: every live cube embedded again, then one atomic switch.

``reembed`` (administrators; a durable job) embeds each cube that has vectors, text and windows alike, with
the new embedder, in batches, into a staging space beside the vectors search reads (``backends.staging``).
Search keeps using the old vectors meanwhile. A cube changed or forgotten while the job runs loses its
staged vector (the store unstages it when it unindexes it), so it is listed again. Once all is staged, the
store builds what its switch needs ahead (``prepare_switch``: PostgreSQL's next space and its graph index),
so the switch stays short; the last changed cubes are embedded inside the switch's write transaction, which
then replaces the vectors, the embedder record and the vector space every process checks, and audits
``embedder.switch``. The query-vector cache is keyed by fingerprint, so no query vector of the old space is
ever reused.

A worker killed midway leaves the store on its old embedder with part of the stage filled; the retried job
keeps what was staged for the same target and stages the rest. A different target empties the stage first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memcubed.backends.base import Embedder, Vector
from memcubed.backends.embedders import make_embedder
from memcubed.backends.staging import StagedRow
from memcubed.engines.text.chunk import chunk_windows
from memcubed.errors import AccessDenied, Cancelled, Conflict, ValidationError
from memcubed.kernel.base import KernelBase, Progress
from memcubed.kernel.embedder_record import META_KEY, EmbedderRecord, read_record
from memcubed.kernel.jobs import JobKind
from memcubed.kernel.lease import holding
from memcubed.schemas.ops import PrincipalPublic
from memcubed.schemas.reembed import ReembedInput, ReembedReport

__all__ = ["STAGE_KEY", "ReembedOps"]

STAGE_KEY = "embedder.staging"
"""Store metadata: the record of the embedder whose vectors the stage holds ("" when none)."""

_LATE_BATCH = 4096


class ReembedOps(KernelBase):
    """The ``reembed`` operation and its job."""

    def reembed(self, embedder: str, *, principal: str, batch: int = 256,
                progress: Progress | None = None) -> ReembedReport:
        """Move the store to ``embedder``: embed every live cube again, then switch atomically.

        Raises:
            AccessDenied: the principal is not an administrator.
            ValidationError: a bad spec, ``none``, or a lexical-only store (nothing to re-embed).
            ConfigurationError / BackendUnavailable: the new embedder cannot be built.
            Conflict: another re-embed switched the store, or took over the stage, meanwhile.
        """
        actor = self._actor(principal)
        _admin(actor)
        inp = ReembedInput(embedder=embedder, batch=batch)
        recorded = self._reembed_source()
        target = self._target(inp.embedder)
        wanted = EmbedderRecord.of(target)
        if (wanted.spec, wanted.dim, wanted.fingerprint) == (recorded.spec, recorded.dim, recorded.fingerprint):
            return _report(False, recorded, wanted, 0, 0)
        with holding(None), self.store.transaction():  # scratch space, not the job's output
            if self.store.get_meta(STAGE_KEY) != wanted.encode():
                self.store.begin_stage(wanted.dim)
                self.store.set_meta(STAGE_KEY, wanted.encode())
        try:
            total, done = self.store.reembed_counts()
            if progress is not None:
                progress(done, total)
            after = 0
            while rows := self.store.reembed_todo(after, inp.batch):
                staged = self._embedded(target, rows)
                with holding(None), self.store.transaction():
                    self._check_stage(wanted)
                    done += self.store.stage_vectors(staged)
                after = rows[-1][0]
                if progress is not None:
                    progress(min(done, total), total)
            self.store.prepare_switch()  # the long part (PostgreSQL: a graph index), before readers must wait
            return self._switch(target, recorded, wanted, actor.name)
        except Cancelled:
            with holding(None), self.store.transaction():  # a cancelled move keeps nothing it staged
                if self.store.get_meta(STAGE_KEY) == wanted.encode():
                    self.store.clear_stage()
                    self.store.set_meta(STAGE_KEY, "")
            raise

    def _reembed_source(self) -> EmbedderRecord:
        recorded = read_record(self.store)
        if self.embedder is None or recorded is None or not recorded.dim:
            raise ValidationError("this store is lexical only (no embedder): it has no vectors to re-embed",
                                  field="embedder")
        return recorded

    def _target(self, spec: str) -> Embedder:
        if spec.strip() == "none":
            raise ValidationError("reembed moves vectors to another embedder; `none` would drop them",
                                  field="embedder")
        embedder = make_embedder(spec, base_url=self.settings.embedder_base_url,
                                 api_key=self.settings.embedder_api_key)
        if embedder is None:
            raise ValidationError(f"embedder spec {spec!r} builds no embedder", field="embedder")
        return embedder

    def _check_stage(self, wanted: EmbedderRecord) -> None:
        if self.store.get_meta(STAGE_KEY) != wanted.encode():
            raise Conflict("another re-embed took over the staging space", field="embedder")

    def _embedded(self, target: Embedder, rows: Sequence[tuple[int, str]]) -> list[StagedRow]:
        """Each (seq, text) with its main vector and its windows' vectors from ``target`` (one batch each)."""
        texts = [text for _, text in rows]
        mains = _embed(target, texts)
        window = target.window_tokens if self.settings.embed_windows else 0
        pieces = [chunk_windows(text, window) for text in texts]
        flat = iter(_embed(target, [w for windows in pieces for w in windows]))
        return [(seq, text, main, tuple(next(flat) for _ in windows))
                for (seq, text), main, windows in zip(rows, mains, pieces, strict=True)]

    def _switch(self, target: Embedder, recorded: EmbedderRecord, wanted: EmbedderRecord,
                principal: str) -> ReembedReport:
        """Stage what changed meanwhile, then switch vectors, record and vector space in one write."""
        with self._write() as pending:
            now = read_record(self.store)
            if now != recorded:
                raise Conflict(f"the store moved to embedder {now.label if now else 'none'} meanwhile",
                               field="embedder")
            self._check_stage(wanted)
            late = 0
            while rows := self.store.reembed_todo(0, _LATE_BATCH):
                staged = self.store.stage_vectors(self._embedded(target, rows))
                if not staged:
                    raise Conflict("cubes changed while they were re-embedded at the switch", field="embedder")
                late += staged
            cubes = self.store.switch_vectors(wanted.dim)
            self.store.set_meta(META_KEY, wanted.encode())
            self.store.set_meta(STAGE_KEY, "")
            self._audit(pending, principal, "embedder.switch", None, None, {
                "from": recorded.label, "from_fingerprint": recorded.fingerprint, "to": wanted.label,
                "to_fingerprint": wanted.fingerprint, "cubes": cubes, "late": late})
        self.embedder = target
        self.store.expect_space(wanted.encode())
        return _report(True, recorded, wanted, cubes, late)

    def _reembed_job(self) -> JobKind:
        """``reembed`` as a background job: refused at submit for non-administrators and bad specs."""
        def check(params: ReembedInput, actor: PrincipalPublic) -> None:
            _admin(actor)
            self._reembed_source()
            if params.embedder.strip() == "none":
                raise ValidationError("reembed moves vectors to another embedder; `none` would drop them",
                                      field="embedder")

        def run(params: ReembedInput, principal: str, progress: Progress) -> dict[str, Any]:
            report = self.reembed(params.embedder, principal=principal, batch=params.batch, progress=progress)
            return report.model_dump(mode="json")

        return JobKind(params=ReembedInput, check=check, run=run)


def _admin(actor: PrincipalPublic) -> None:
    if not actor.is_admin:
        raise AccessDenied("only administrators may re-embed the store (it rewrites every namespace's vectors)",
                           principal=actor.name)


def _embed(embedder: Embedder, texts: Sequence[str]) -> list[Vector]:
    rows: list[Vector] = []
    for start in range(0, len(texts), 256):
        rows.extend(np.asarray(v, dtype=np.float32) for v in embedder.embed(list(texts[start:start + 256])))
    return rows


def _report(switched: bool, before: EmbedderRecord, after: EmbedderRecord, cubes: int, late: int) -> ReembedReport:
    return ReembedReport(switched=switched, previous=before.label, previous_fingerprint=before.fingerprint,
                         embedder=after.label, fingerprint=after.fingerprint, dim=after.dim, cubes=cubes, late=late)
