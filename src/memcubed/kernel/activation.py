"""Kernel operations on activation memory: ``cache`` plaintext into KV, ``generate`` with it injected."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, get_args

from memcubed.backends.base import IndexEntry
from memcubed.backends.models.base import KVLanguageModel, LanguageModel
from memcubed.cube.ids import new_cube_id
from memcubed.cube.model import BlobRef, CubeKind, CubeState, DerivedRef, MemCube, Right, Source
from memcubed.engines.kvcache import (
    CubeText,
    KVCacheConfig,
    KVCacheEngine,
    MemorySegmentIndex,
    Mode,
    StorageDType,
    ordered,
    with_prefix,
)
from memcubed.engines.kvcache.prefix import chain_keys
from memcubed.errors import Conflict, ModelUnavailable, ValidationError, VersionConflict
from memcubed.kernel.base import Progress, bump, utcnow
from memcubed.kernel.derivation import DerivationOps
from memcubed.kernel.jobs import JobKind
from memcubed.schemas.chat import GenerationResult
from memcubed.schemas.jobs import CacheJob
from memcubed.schemas.ops import PrincipalPublic

__all__ = ["ActivationOps"]

SEGMENT_KEY = "kvseg:"  # store meta prefix: prefix-tree segment key -> blob digest


class ActivationOps(DerivationOps):
    """Activation memory: KV-caches compiled from exact plaintext versions, injected into an open model."""

    def cache(self, cube_ids: Sequence[str], *, principal: str, lm: KVLanguageModel,
              mode: Mode = "exact", storage_dtype: StorageDType = "float32",
              progress: Progress | None = None) -> MemCube:
        """Compile plaintext cubes into one activation cube (their KV, in canonical order).

        Segments already stored for the same model and prefix are reused (the prefix tree); the
        model runs outside the write transaction, the new cube and its segment index inside it.
        ``progress`` gets (cubes done, cubes in all) as segments are loaded or computed.
        ``storage_dtype="bfloat16"`` halves the bytes at a small logit deviation (see NOTES.md).

        Raises:
            ValidationError: no ids, a cube that is not active plaintext, or cubes from several namespaces.
            AccessDenied: the principal lacks read on a source cube.
        """
        actor = self._actor(principal)
        sources = self._cache_sources(cube_ids, actor)
        fields = self._compile(sources, lm, mode, storage_dtype, progress)
        now = utcnow()
        cube = MemCube(id=new_cube_id(), kind=CubeKind.ACTIVATION, namespace=sources[0].namespace, owner=actor.name,
                       source=Source(type="derived", uri="kvcache"), created_at=now, updated_at=now, version=1,
                       importance=max(s.importance for s in sources), **fields)
        with self._write() as pending:
            self._check_unchanged(sources)
            self._require_blobs(fields["segments"])
            self._index_segments(fields)
            self.store.insert_cube(cube, IndexEntry())
            self._commit(pending, cube, "cache", actor, {"sources": [r.id for r in cube.derived_from], "mode": mode,
                                                          "tokens": cube.meta["tokens"]})
        return self._present(cube, actor)

    def _compile(self, sources: Sequence[MemCube], lm: KVLanguageModel, mode: Mode, storage_dtype: StorageDType,
                 progress: Progress | None) -> dict[str, Any]:
        """Compile the KV of ``sources`` (outside any transaction); return the activation cube's system fields."""
        if storage_dtype not in get_args(StorageDType):
            raise ValidationError(f"storage_dtype must be one of {get_args(StorageDType)}", field="storage_dtype")
        engine = KVCacheEngine(lm, KVCacheConfig(storage_dtype=storage_dtype))
        texts = ordered([CubeText.of(s) for s in sources])
        index = self._segment_index(engine, texts)
        started = time.perf_counter()
        prefix, report = engine.build(texts, blobs=self.blobs, index=index, mode=mode, progress=progress)
        seconds = time.perf_counter() - started
        sizes = [self.blobs.size(d) for d in report.digests]
        return {"derived_from": [DerivedRef(id=t.id, version=t.version) for t in texts], "model": lm.fingerprint,
                "payload": BlobRef(sha256=report.digests[-1], size=sizes[-1]), "segments": report.digests,
                "meta": {"tokens": prefix.token_count, "bytes": sum(sizes), "mode": mode,
                         "storage_dtype": engine.config.storage_dtype, "reused": report.reused,
                         "computed": report.computed, "compile_s": round(seconds, 3),
                         "segment_keys": report.keys}}

    def _index_segments(self, fields: dict[str, Any]) -> None:
        """Record the prefix-tree keys of freshly compiled segments (inside the write transaction)."""
        for key, digest in zip(fields["meta"].pop("segment_keys"), fields["segments"], strict=True):
            self.store.set_meta(SEGMENT_KEY + key, digest)

    def _recompile_activation(self, cube: MemCube, actor: PrincipalPublic, lm: KVLanguageModel,
                              progress: Progress | None) -> MemCube:
        """Compile an activation cube again from its sources' current versions, as its next version.

        Sources deleted or forgotten since are left out. The old segments are released when no live
        cube uses them.
        """
        sources = self._current_sources(cube, actor)
        mode: Mode = "approximate" if cube.meta.get("mode") == "approximate" else "exact"
        dtype: StorageDType = "bfloat16" if cube.meta.get("storage_dtype") == "bfloat16" else "float32"
        fields = self._compile(sources, lm, mode, dtype, progress)
        with self._write() as pending:
            latest = self._load(cube.id, actor, Right.WRITE)
            if latest.version != cube.version:
                raise VersionConflict(f"activation cube {cube.id} changed while it was recompiled", id=cube.id,
                                      expected=cube.version, actual=latest.version)
            self._check_unchanged(sources)
            self._require_blobs(fields["segments"])
            self._index_segments(fields)
            new = bump(latest, state=CubeState.ACTIVE, **fields)
            self.store.replace_cube(new)
            self._commit(pending, new, "recompile", actor, {"sources": [r.id for r in new.derived_from]})
        self._release_blobs([d for d in cube.segments if d not in new.segments])
        return self._present(new, actor)

    def _cache_sources(self, cube_ids: Sequence[str], actor: PrincipalPublic) -> list[MemCube]:
        """The plaintext cubes ``cache`` compiles: readable, active, text-bearing, one namespace."""
        return self._plaintext_sources(cube_ids, actor, op="cache", done="cached")

    def _segment_index(self, engine: KVCacheEngine, texts: Sequence[CubeText]) -> MemorySegmentIndex:
        """The stored prefix-tree segments (key → blob digest) along the chain of ``texts``."""
        index = MemorySegmentIndex()
        for key in chain_keys(engine.lm.fingerprint, [t.link for t in texts], fmt=engine.config.format_id()):
            digest = self.store.get_meta(SEGMENT_KEY + key)
            if digest is None:
                break
            index.put(key, digest)
        return index

    def _source_texts(self, cube: MemCube, actor: PrincipalPublic) -> list[CubeText]:
        """The exact source versions a derived cube was made from; the principal must read each."""
        texts: list[CubeText] = []
        for ref in cube.derived_from:
            self._load(ref.id, actor, Right.READ, include_deleted=True)
            entry = self.store.load_version(ref.id, ref.version)
            if entry is None or entry.cube.text is None:
                raise Conflict(f"source {ref.id} v{ref.version} of {cube.id} is gone", id=cube.id)
            texts.append(CubeText.of(entry.cube))
        return texts

    def _cache_job(self) -> JobKind:
        """``cache`` as a background job: checked at submit, compiled by whichever worker claims it."""
        def check(params: CacheJob, actor: PrincipalPublic) -> None:
            self._cache_sources(params.cube_ids, actor)
            self.models.check(params.model, open_model=True)

        def run(params: CacheJob, principal: str, progress: Progress) -> dict[str, Any]:
            lm = self.models.open(params.model)
            cube = self.cache(params.cube_ids, principal=principal, lm=lm,
                              mode="approximate" if params.mode == "approximate" else "exact",
                              storage_dtype="bfloat16" if params.storage_dtype == "bfloat16" else "float32",
                              progress=progress)
            return {"cube_id": cube.id, "tokens": cube.meta["tokens"], "bytes": cube.meta["bytes"]}

        return JobKind(params=CacheJob, check=check, run=run)

    def generate(self, query: str, *, principal: str, lm: KVLanguageModel | LanguageModel,
                 activation_id: str | None = None, max_new_tokens: int = 64) -> GenerationResult:
        """Continue ``query`` greedily with the KV of an activation cube injected (or none).

        A model without KV access (an OpenAI-compatible API) gets the same cubes as the simulated
        cache instead: their exact source versions rendered as a byte-stable prefix, so the
        provider's prompt cache can hit. That path needs read on every source cube.

        Raises:
            AccessDenied: the principal cannot read the activation cube or, now, every source it encodes.
            Conflict: the activation cube is stale (its source changed): it is never injected.
            ModelUnavailable: the cube's KV belongs to another model (one this store lacks, say).
            IntegrityError: a KV blob fails its hash check (it is never fed to the model).
        """
        actor = self._actor(principal)
        if not isinstance(query, str) or not query.strip():
            raise ValidationError("query must not be empty", field="query")
        if not 1 <= max_new_tokens <= 4096:
            raise ValidationError("max_new_tokens must be 1..4096", field="max_new_tokens")
        cube = self._activation(activation_id, actor) if activation_id is not None else None
        if not isinstance(lm, KVLanguageModel):
            return self._simulate(query, cube, actor, lm, max_new_tokens)
        engine = KVCacheEngine(lm)
        prefix, injected, load_ms = None, [], 0.0
        if cube is not None:
            if cube.model != lm.fingerprint:
                raise ModelUnavailable(f"activation cube {cube.id} was compiled by another model",
                                       field="model", expected=cube.model, actual=lm.fingerprint)
            started = time.perf_counter()
            prefix = engine.load(cube.segments, self.blobs)
            load_ms = (time.perf_counter() - started) * 1000
            injected = [cube.id]
            self._touch([cube], actor)
        gen = engine.generate(query, prefix, max_new_tokens=max_new_tokens)
        return GenerationResult(text=gen.text, injected=injected, prefix_tokens=prefix.token_count if prefix else 0,
                                ttft_ms=gen.ttft_s * 1000, total_ms=gen.total_s * 1000, load_ms=load_ms)

    def _activation(self, activation_id: str, actor: PrincipalPublic) -> MemCube:
        """Load an activation cube for injection: readable with every source, of the right kind, not stale."""
        cube = self._load(activation_id, actor, Right.READ)
        if cube.kind is not CubeKind.ACTIVATION:
            raise ValidationError(f"cube {cube.id} is not an activation cube", id=cube.id)
        if cube.state is not CubeState.ACTIVE or not cube.segments:
            raise Conflict(f"activation cube {cube.id} is {cube.state.value}: recompile it", id=cube.id,
                           state=cube.state.value)
        self._require_sources(cube, actor)
        return cube

    def _simulate(self, query: str, cube: MemCube | None, actor: PrincipalPublic, lm: LanguageModel,
                  max_new_tokens: int) -> GenerationResult:
        """The simulated cache: the cube's exact source versions as a stable prompt prefix."""
        texts: list[CubeText] = []
        if cube is not None:
            texts = self._source_texts(cube, actor)
            self._touch([cube], actor)
        started = time.perf_counter()
        text = lm.complete(with_prefix([{"role": "user", "content": query}], texts), max_new_tokens=max_new_tokens)
        total_ms = (time.perf_counter() - started) * 1000
        return GenerationResult(text=text, injected=[cube.id] if cube else [], prefix_tokens=0,
                                ttft_ms=total_ms, total_ms=total_ms)
