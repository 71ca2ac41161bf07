"""Kernel operations on parameter memory: ``consolidate`` plaintext into a LoRA adapter, retrain it
(``recompile``, see ``kernel.lifecycle``) and ``generate_with_adapters``.

A fact is one plaintext cube version: its text is a statement, and its optional ``meta["qa"]``
(``[{"question": ..., "answer": ...}]``) adds question/answer pairs (see ``engines.lora.pairs``).
Training and evaluation run outside any transaction; only the finished adapter is written, in
one transaction, so a cancelled or failed consolidation leaves the store as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from memcubed.backends.base import IndexEntry
from memcubed.backends.models.base import KVLanguageModel, LanguageModel
from memcubed.cube.ids import new_cube_id
from memcubed.cube.model import BlobRef, CubeKind, CubeState, DerivedRef, MemCube, Right, Source
from memcubed.engines.lora import (
    CONTROL,
    AdapterServer,
    Fact,
    LoRAConfig,
    LoRAEngine,
    control_probes,
    evaluation_record,
    gate,
    gate_passed,
    open_model,
    probes,
    qa_from_meta,
)
from memcubed.engines.lora.threads import torch_threads, train_threads
from memcubed.errors import (
    AdapterInactive,
    Cancelled,
    Conflict,
    ModelUnavailable,
    ValidationError,
    VersionConflict,
)
from memcubed.kernel.base import Progress, bump, utcnow
from memcubed.kernel.derivation import DerivationOps
from memcubed.kernel.jobs import JobKind
from memcubed.kernel.validation import parse
from memcubed.schemas.chat import GenerationResult
from memcubed.schemas.jobs import ConsolidateJob
from memcubed.schemas.ops import PrincipalPublic

__all__ = ["ParameterOps", "ShouldCancel", "served_state"]

ShouldCancel = Callable[[], bool]
"""Asked between steps of long work; True stops it with ``Cancelled`` and nothing stored."""

Control = Sequence[tuple[str, str]]


class ParameterOps(DerivationOps):
    """Parameter memory: LoRA adapters trained on exact plaintext versions, evaluated, served and archived."""

    def consolidate(self, cube_ids: Sequence[str], *, principal: str, lm: LanguageModel | KVLanguageModel,
                    config: LoRAConfig | dict[str, Any] | None = None, control: Control | None = None,
                    progress: Progress | None = None, should_cancel: ShouldCancel | None = None) -> MemCube:
        """Train a LoRA adapter on plaintext cubes and store it as a parameter cube.

        The cube records the exact source versions (``derived_from``), the base model's fingerprint
        (``model``), the adapter blob (``payload``) and in ``meta``: rank, alpha, target modules,
        the training loss curve, seconds, epochs, and the evaluation before and after training
        (recall and answer loss of the sources' probes, and of the ``control`` set) and the gate's verdict
        (``meta["gate"]``). When training ended on an early-stop check, that check's evaluation of the same
        probes on the same weights is the evaluation after training (``meta["after_from_stop_check"]``).
        The adapter is served only if it passes the gate (``LoRAConfig.recall_min``,
        ``LoRAConfig.drift_max``); otherwise the cube is stored ``inactive`` with its evaluation, and
        ``generate_with_adapters`` refuses it. The audit record says which, with the numbers.

        Args:
            cube_ids: the plaintext cubes to consolidate (one namespace).
            lm: an open local model (``LocalTransformersLM``).
            config: adapter shape and schedule (``LoRAConfig`` or its fields).
            control: (question, answer) pairs not trained on, to measure drift; default: the first
                ``config.control_for(len(cube_ids))`` questions of ``engines.lora.CONTROL``; empty to skip.
            progress: called with (units done, units in all): probes before, training steps, probes after.
            should_cancel: asked between steps; True stops with ``Cancelled`` and stores nothing.

        Raises:
            ValidationError: no ids, a cube that is not active plaintext, several namespaces, bad ``meta.qa``,
                a bad config or control set, or facts that give no training pairs.
            AccessDenied: the principal lacks read on a source cube.
            ConfigurationError: ``lm`` is not an open local model.
            Conflict: a source changed while the adapter was trained (consolidate again).
            Cancelled: ``should_cancel`` returned True.
        """
        actor = self._actor(principal)
        settings = config if isinstance(config, LoRAConfig) else parse(LoRAConfig, config or {})
        sources = self._consolidation_sources(cube_ids, actor)
        checked_control = _checked_control(control, settings, len(sources))
        engine = LoRAEngine(open_model(lm), settings)
        payload, meta = self._train(engine, sources, checked_control, progress, should_cancel)
        now = utcnow()
        cube = MemCube(
            id=new_cube_id(), kind=CubeKind.PARAMETER, namespace=sources[0].namespace, owner=actor.name,
            source=Source(type="derived", uri="lora"), created_at=now, updated_at=now, version=1,
            state=CubeState.ACTIVE if meta["gate"]["passed"] else CubeState.INACTIVE,
            derived_from=[DerivedRef(id=s.id, version=s.version) for s in sources],
            importance=max(s.importance for s in sources), model=engine.fingerprint, payload=payload, meta=meta)
        try:
            with self._write() as pending:
                self._check_unchanged(sources)
                self._require_blobs([payload.sha256])
                self.store.insert_cube(cube, IndexEntry())
                self._commit(pending, cube, "consolidate", actor, {"sources": [s.id for s in sources],
                                                                    "pairs": meta["pairs"], "epochs": meta["epochs"],
                                                                    "gate": _audited(meta["gate"])})
        except BaseException:
            self._release_blobs([payload.sha256])
            raise
        return self._present(cube, actor)

    def _consolidation_sources(self, cube_ids: Sequence[str], actor: PrincipalPublic) -> list[MemCube]:
        """The plaintext cubes ``consolidate`` trains on, by id: readable, active, one namespace."""
        sources = self._plaintext_sources(cube_ids, actor, op="consolidate", done="consolidated")
        return sorted(sources, key=lambda s: s.id)

    def _consolidate_job(self) -> JobKind:
        """``consolidate`` as a background job: checked at submit, trained by whichever worker claims it."""
        def check(params: ConsolidateJob, actor: PrincipalPublic) -> None:
            self._consolidation_sources(params.cube_ids, actor)
            self.models.check(params.model, open_model=True)
            _checked_control(params.control, parse(LoRAConfig, params.config or {}), len(params.cube_ids))

        def run(params: ConsolidateJob, principal: str, progress: Progress) -> dict[str, Any]:
            lm = self.models.open(params.model)
            cancelled = getattr(progress, "cancelled", None)
            cube = self.consolidate(params.cube_ids, principal=principal, lm=lm, config=params.config,
                                    control=params.control, progress=progress, should_cancel=cancelled)
            evaluation = cube.meta["evaluation"]
            return {"cube_id": cube.id, "epochs": cube.meta["epochs"], "facts_after": evaluation["facts"]["after"],
                    "control_drift_points": evaluation["control"]["drift_points"], "state": cube.state.value,
                    "gate": _audited(cube.meta["gate"])}

        return JobKind(params=ConsolidateJob, check=check, run=run)

    def _recompile_adapter(self, cube_id: str, *, principal: str, lm: LanguageModel | KVLanguageModel,
                           control: Control | None = None, progress: Progress | None = None,
                           should_cancel: ShouldCancel | None = None) -> MemCube:
        """Retrain a parameter cube on the current versions of its sources, writing its next version.

        Sources that were deleted or forgotten since are left out (so the new adapter does not hold
        them); updated sources are trained in their current version. The configuration is the one
        the cube was trained with, and the new adapter passes the same gate as ``consolidate`` (else
        the new version is ``inactive``). The old adapter blob is released when no live cube uses it.

        Raises:
            ValidationError: the cube is not a parameter cube, or none of its sources is left.
            AccessDenied: the principal lacks write on the cube or read on a remaining source.
            VersionConflict: the cube changed while it was retrained.
            Conflict: a source changed while the adapter was trained.
            Cancelled: ``should_cancel`` returned True (the cube is unchanged).
        """
        actor = self._actor(principal)
        cube = self._parameter(cube_id, actor, Right.WRITE)
        engine = LoRAEngine(open_model(lm), LoRAConfig.model_validate(cube.meta["config"]))
        sources = self._current_sources(cube, actor)
        checked_control = _checked_control(control, engine.config, len(sources))
        dropped = [ref.id for ref in cube.derived_from if ref.id not in {s.id for s in sources}]
        payload, meta = self._train(engine, sources, checked_control, progress, should_cancel)
        meta["dropped"] = dropped
        old = cube.payload
        try:
            with self._write() as pending:
                latest = self._parameter(cube_id, actor, Right.WRITE)
                if latest.version != cube.version:
                    raise VersionConflict(f"parameter cube {cube.id} changed while it was retrained", id=cube.id,
                                          expected=cube.version, actual=latest.version)
                self._check_unchanged(sources)
                self._require_blobs([payload.sha256])
                state = CubeState.ACTIVE if meta["gate"]["passed"] else CubeState.INACTIVE
                new = bump(latest, state=state, payload=payload, model=engine.fingerprint, meta=meta,
                           derived_from=[DerivedRef(id=s.id, version=s.version) for s in sources])
                self.store.replace_cube(new)
                self._commit(pending, new, "recompile", actor, {"sources": [s.id for s in sources],
                                                                 "dropped": dropped, "gate": _audited(meta["gate"])})
        except BaseException:
            self._release_blobs([payload.sha256])
            raise
        if old is not None and old.sha256 != payload.sha256:
            self._release_blobs([old.sha256])
        return self._present(new, actor)

    def generate_with_adapters(self, query: str, *, principal: str, lm: LanguageModel | KVLanguageModel,
                               parameter_ids: Sequence[str], max_new_tokens: int = 64,
                               chat: bool = True) -> GenerationResult:
        """Answer ``query`` greedily with the adapters of parameter cubes loaded and active together.

        Adapters stay loaded between calls in a bounded number of slots (``settings.adapter_slots``),
        the least recently used unloaded first; one whose blob was purged is unloaded at once.

        Args:
            query: the user message (``chat``) or raw text to continue (``chat=False``).
            parameter_ids: the parameter cubes to use (at most ``adapter_slots``); empty: the base model.

        Raises:
            ValidationError: an empty query, a bad token limit, or a cube that is not a parameter cube.
            AccessDenied: the principal cannot read a parameter cube or, now, every source it was trained on.
            AdapterInactive: a parameter cube failed its consolidation gate (its adapter is never loaded).
            Conflict: a parameter cube is stale or archived (its adapter is never loaded).
            ModelUnavailable: an adapter belongs to another base model.
            ConfigurationError: ``lm`` is not open.
            BudgetExceeded: more cubes than adapter slots.
            IntegrityError: an adapter blob fails its hash or format check.
        """
        actor = self._actor(principal)
        if not isinstance(query, str) or not query.strip():
            raise ValidationError("query must not be empty", field="query")
        if not 1 <= max_new_tokens <= 4096:
            raise ValidationError("max_new_tokens must be 1..4096", field="max_new_tokens")
        if isinstance(parameter_ids, str):
            raise ValidationError("parameter_ids must be a list of cube ids", field="parameter_ids")
        model = open_model(lm)
        cubes = [self._parameter(cube_id, actor, Right.READ) for cube_id in dict.fromkeys(parameter_ids)]
        for cube in cubes:
            _require_served(cube)  # like the state check below: the cube's own state, which its reader may see
            if cube.state is not CubeState.ACTIVE or cube.payload is None:
                raise Conflict(f"parameter cube {cube.id} is {cube.state.value}: recompile it", id=cube.id,
                               state=cube.state.value)
            self._require_sources(cube, actor)
            if cube.model != model.fingerprint:
                raise ModelUnavailable(f"parameter cube {cube.id} was trained on another base model",
                                       field="model", expected=cube.model, actual=model.fingerprint)
        server = self._adapter_server(model)
        server.retain(self.blobs.exists)
        engine = LoRAEngine(model)
        load_s = 0.0

        def loader(digest: str) -> Callable[[], Any]:
            def load() -> Any:
                nonlocal load_s
                started = time.perf_counter()
                adapter = engine.loads(self.blobs.get(digest))
                load_s += time.perf_counter() - started
                return adapter
            return load

        prompt = model.chat_ids([{"role": "user", "content": query}]) if chat else model.encode(query)
        started = time.perf_counter()
        adapters = [(c.payload.sha256, loader(c.payload.sha256)) for c in cubes if c.payload is not None]
        gen = server.generate(prompt, adapters, max_new_tokens=max_new_tokens)
        total_s = time.perf_counter() - started
        self._touch(cubes, actor)
        return GenerationResult(text=gen.text.strip(), adapters=[c.id for c in cubes], ttft_ms=gen.ttft_s * 1000,
                                total_ms=total_s * 1000, load_ms=load_s * 1000)

    # -- machinery ----------------------------------------------------------
    def _adapter_server(self, lm: Any) -> AdapterServer:
        """The adapter server of ``lm`` for this kernel (created on first use, slots from settings)."""
        servers: dict[int, AdapterServer] = self.__dict__.setdefault("_adapter_servers", {})
        server = servers.get(id(lm))
        if server is None or server.lm is not lm:
            server = servers[id(lm)] = AdapterServer(lm, slots=self.settings.adapter_slots)
        return server

    def _parameter(self, cube_id: str, actor: PrincipalPublic, right: Right) -> MemCube:
        cube = self._load(cube_id, actor, right)
        if cube.kind is not CubeKind.PARAMETER:
            raise ValidationError(f"cube {cube.id} is not a parameter cube", id=cube.id)
        return cube

    def _train(self, engine: LoRAEngine, sources: Sequence[MemCube], control: Control,
               progress: Progress | None, should_cancel: ShouldCancel | None) -> tuple[BlobRef, dict[str, Any]]:
        """Evaluate, train, evaluate again and store the adapter blob (the last step); return it and the meta.

        The work runs with ``settings.train_threads`` torch threads (``engines.lora.threads``)."""
        threads = train_threads(self.settings.train_threads)
        with torch_threads(threads):
            payload, meta = self._train_with(engine, sources, control, progress, should_cancel)
        meta["torch_threads"] = threads
        return payload, meta

    def _train_with(self, engine: LoRAEngine, sources: Sequence[MemCube], control: Control,
                    progress: Progress | None, should_cancel: ShouldCancel | None) -> tuple[BlobRef, dict[str, Any]]:
        facts = [Fact(id=s.id, version=s.version, statement=s.text or "", qa=qa_from_meta(s.meta)) for s in sources]
        fact_probes = [p for fact in facts for p in probes(fact)]
        ctl_probes = control_probes(tuple(control))
        evaluated = len(fact_probes) + len(ctl_probes)
        total = 2 * evaluated + engine.steps(facts)
        offset = 0

        def advance(done: int, _: int) -> None:
            if progress is not None:
                progress(offset + done, total)

        def cancelled() -> bool:
            return should_cancel is not None and bool(should_cancel())

        if cancelled():
            raise Cancelled("consolidation cancelled before it started")
        before = engine.evaluate([*fact_probes, *ctl_probes], progress=advance, should_cancel=cancelled)
        offset = evaluated
        trained = engine.train(facts, progress=advance, should_cancel=cancelled, control=ctl_probes)
        offset = evaluated + engine.steps(facts)  # the planned steps: an early stop reported (all, all)
        after = trained.after  # training ended on its check: that evaluation, on these weights, is the final one
        reused = after is not None and [r.probe for r in after.results] == [*fact_probes, *ctl_probes]
        if after is None or not reused:
            after = engine.evaluate([*fact_probes, *ctl_probes], [trained.adapter], progress=advance,
                                    should_cancel=cancelled)
        advance(evaluated, evaluated)
        data = engine.dumps(trained.adapter)
        if cancelled():
            raise Cancelled("consolidation cancelled before the adapter was stored")
        digest = self.blobs.put(data)
        cfg = engine.config
        result = trained.result
        meta: dict[str, Any] = {
            "rank": cfg.rank, "alpha": cfg.alpha, "target_modules": list(cfg.target_modules), "epochs": cfg.epochs,
            "epochs_run": result.epochs, "stopped_early": result.stopped_early, "recall_checks": result.recall_checks,
            "pairs": trained.pairs, "steps": result.steps, "loss_curve": result.loss_curve,
            "train_s": round(result.seconds, 3), "epoch_s": round(result.seconds_per_epoch, 3), "bytes": len(data),
            "parameters": trained.adapter.parameters, "config": cfg.model_dump(mode="json"),
            "evaluation": evaluation_record(before, after, len(fact_probes)), "after_from_stop_check": reused,
        }
        meta["gate"] = gate(meta["evaluation"], cfg)
        return BlobRef(sha256=digest, size=len(data)), meta


def _checked_control(control: Control | None, config: LoRAConfig, facts: int) -> Control:
    """The control set: the caller's, checked, or the first ``config.control_for(facts)`` default questions."""
    if control is None:
        return CONTROL[: config.control_for(facts)]
    if isinstance(control, str):
        raise ValidationError("control must be a list of (question, answer) pairs", field="control")
    pairs: list[tuple[str, str]] = []
    for item in control:
        if isinstance(item, str) or len(item) != 2 or not all(isinstance(x, str) and x.strip() for x in item):
            raise ValidationError("control must be a list of (question, answer) pairs of non-blank text",
                                  field="control")
        pairs.append((item[0], item[1]))
    return pairs


def _audited(verdict: dict[str, Any]) -> dict[str, Any]:
    """The gate's verdict as the audit records it: gated or passed, and the numbers."""
    return {"outcome": "passed" if verdict["passed"] else "gated", "recall": verdict["recall"],
            "recall_min": verdict["recall_min"], "drift_points_lost": verdict["drift_points_lost"],
            "drift_max": verdict["drift_max"], "control_probes": verdict["control_probes"]}


def _require_served(cube: MemCube) -> None:
    """Refuse a parameter cube whose adapter failed its gate, whatever its state says."""
    if cube.state is CubeState.INACTIVE or not gate_passed(cube.meta):
        verdict = cube.meta.get("gate") or {}
        raise AdapterInactive(f"parameter cube {cube.id} is inactive: its adapter failed the consolidation gate "
                              f"({'; '.join(verdict.get('reasons', [])) or 'see its evaluation'})", id=cube.id,
                              state=cube.state.value)


def served_state(cube: MemCube) -> CubeState:
    """The state a live cube comes back to (undelete): ``inactive`` for an adapter that failed its gate."""
    return CubeState.INACTIVE if cube.kind is CubeKind.PARAMETER and not gate_passed(cube.meta) else CubeState.ACTIVE
