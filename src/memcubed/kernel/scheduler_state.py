"""What the scheduler decides on, read from the store: usage signals (folded from the event log), the
policy view (live cubes, derived cubes, KV segment sizes) and the budgets' ledger. Reads only; the kernel
saves the folded signals in a scheduler tick (``kernel.scheduler``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from memcubed.backends.models.base import KVLanguageModel, LanguageModel
from memcubed.cube.model import CubeKind, CubeState, MemCube
from memcubed.engines.kvcache import CubeText
from memcubed.engines.kvcache.memory import render_memory
from memcubed.engines.scheduler import (
    Budget,
    Budgets,
    Cost,
    CubeInfo,
    Derived,
    Ledger,
    PolicyConfig,
    Signals,
    View,
    estimate_tokens,
)
from memcubed.engines.scheduler.tree import activation_use
from memcubed.engines.scheduler.workset import select_members
from memcubed.kernel.base import KernelBase
from memcubed.kernel.workset import token_count
from memcubed.kernel.workset_state import (
    is_working_set,
    working_set_failures,
    working_set_scope,
    working_set_scopes,
)
from memcubed.schemas.events import ACCESS
from memcubed.schemas.jobs import JobState
from memcubed.schemas.ops import PrincipalPublic
from memcubed.schemas.scheduler import DecisionRecord

__all__ = ["SIGNALS", "SchedulerState", "SchedulerStateOps"]

SIGNALS = "scheduler_signals"
"""Store meta key: the scheduler's folded usage signals, with their event log cursor."""

_PAGE = 10_000
_CHUNK = 500
_HOUR = 3600.0
_PENDING_WINDOW_S = 7 * 24 * 3600.0  # submitted jobs looked at for still-pending work
_FP32_BYTES_PER_TOKEN = 46_080.0  # the packaged SmolLM2-135M, until an activation cube measures the model


@dataclass(frozen=True)
class SchedulerState:
    """One tick's inputs: the signals (folded, not yet saved), the view, the ledger and the live cubes."""

    signals: Signals
    folded: int
    view: View
    ledger: Ledger
    cubes: dict[str, MemCube]
    token_scale: float = 1.0

    def info(self, cube: MemCube) -> CubeInfo:
        """What a policy sees of a live plaintext cube (its tokens estimated and scaled to the tokenizer)."""
        return _info(cube, self.token_scale)


class SchedulerStateOps(KernelBase):
    """Builds the scheduler's inputs from the store (see the module docstring)."""

    def _scheduler_budgets(self) -> Budgets:
        s = self.settings
        return Budgets(store=Budget.parse(s.scheduler_budgets),
                       namespaces={ns: Budget.parse(b) for ns, b in sorted(s.scheduler_namespace_budgets.items())})

    def _scheduler_signals(self) -> tuple[Signals, int]:
        """The saved signals with every access event past their cursor folded in (nothing written)."""
        signals = Signals.loads(self.store.get_meta(SIGNALS))
        half_life = self.settings.scheduler_half_life_s
        folded = 0
        while True:
            page = self.store.read_events(after_seq=signals.cursor, limit=_PAGE, kinds=(ACCESS,))
            before = signals.cursor
            folded += signals.fold(page, half_life_s=half_life, complete=len(page) < _PAGE)
            if len(page) < _PAGE or signals.cursor == before:
                return signals, folded

    def _load_chunked(self, ids: list[str]) -> dict[str, MemCube]:
        found: dict[str, MemCube] = {}
        for start in range(0, len(ids), _CHUNK):
            found.update(self.store.load_cubes(ids[start : start + _CHUNK]))
        return found

    def _scheduler_state(self, *, scopes: bool = True) -> SchedulerState:
        """Fold the log, then read the live and derived cubes, the segment sizes, the working sets to choose
        (unless ``scopes`` is false) and the budgets' use."""
        signals, folded = self._scheduler_signals()
        derived_cubes = self._load_chunked(self.store.derived_cube_ids())
        wanted = set(signals.cubes) | {c for key in signals.sets for c in key}
        wanted |= {r.id for d in derived_cubes.values() for r in d.derived_from}
        loaded = self._load_chunked(sorted(wanted - derived_cubes.keys()))
        live = {cid: c for cid, c in loaded.items() if c.kind is CubeKind.PLAINTEXT and c.state is CubeState.ACTIVE
                and not c.forgotten and c.text}
        # Deleted, archived, forgotten or missing cubes leave the signals (a forgotten one leaves no trace).
        signals.forget(sorted(c for c in wanted if c not in live and c not in derived_cubes))
        derived = [self._derived(c) for _, c in sorted(derived_cubes.items())]
        sizes = {d: self.blobs.size(d) for c in derived for d in c.segments if self.blobs.exists(d)}
        config = self._policy_config(derived_cubes, sizes)
        scale = self._token_scale(derived_cubes, live)
        infos = {cid: _info(c, scale) for cid, c in sorted(live.items())}
        view_signals = _with_activation_reads(signals, derived, config.half_life_s)
        decisions = self.store.list_decisions(since_clock=signals.now - _PENDING_WINDOW_S, limit=100_000)
        pending = self._pending(decisions)
        sets = working_set_scopes(self, view_signals, live, working_set_failures(self, decisions)) if scopes else []
        view = View(signals.now, view_signals, infos, [*derived, *(p for p, _ in pending)], sizes, config, sets)
        return SchedulerState(signals, folded, view, self._scheduler_ledger(view, decisions, pending), live, scale)

    def _hottest(self, namespace: str, actor: PrincipalPublic, lm: KVLanguageModel | LanguageModel) -> list[str]:
        """The default working set selection is the scheduler's: the members a ``working_set`` decision would
        choose now (any read counts; the tokenizer's exact token counts)."""
        state = self._scheduler_state(scopes=False)
        ids = sorted(c for c, cube in state.cubes.items() if cube.namespace == namespace and c in state.signals.cubes)
        scope = working_set_scope(self, actor, namespace, ids, state.cubes)
        tokens = {c: token_count(lm, CubeText.of(state.cubes[c])) for c in scope.candidates}
        return select_members(state.view, scope, tokens=tokens, min_reads=1)

    @staticmethod
    def _derived(cube: MemCube) -> Derived:
        kind: Literal["activation", "parameter"] = "activation" if cube.kind is CubeKind.ACTIVATION else "parameter"
        return Derived(cube.id, kind, cube.namespace, cube.owner, tuple(sorted(r.id for r in cube.derived_from)),
                       tuple(cube.segments), stale=cube.state is CubeState.STALE, working_set=is_working_set(cube),
                       built=cube.updated_at.timestamp())

    def _policy_config(self, derived: dict[str, MemCube], sizes: dict[str, int]) -> PolicyConfig:
        """Tuning from the settings; bytes per token measured from the store's activation cubes."""
        tokens = sum(int(c.meta.get("tokens", 0)) for c in derived.values() if c.kind is CubeKind.ACTIVATION)
        size = sum(sizes.get(d, 0) for c in derived.values() if c.kind is CubeKind.ACTIVATION for d in c.segments)
        per_token = size / tokens if tokens and size else _FP32_BYTES_PER_TOKEN
        s = self.settings
        return PolicyConfig(half_life_s=s.scheduler_half_life_s, bytes_per_token=per_token,
                            memory_bytes_per_token=max(per_token, _FP32_BYTES_PER_TOKEN),
                            train_s_per_fact=s.scheduler_train_s_per_fact,
                            consolidate_min_reads=s.scheduler_consolidate_min_reads,
                            consolidate_min_importance=s.scheduler_consolidate_min_importance,
                            stable_s=s.scheduler_stable_s, working_set_max_tokens=s.working_set_max_tokens,
                            working_set_max_cubes=s.working_set_max_cubes,
                            working_set_min_reads=s.scheduler_working_set_min_reads,
                            working_set_refresh=s.scheduler_working_set_refresh,
                            working_set_cadence_s=s.scheduler_working_set_cadence_s)

    @staticmethod
    def _token_scale(derived: dict[str, MemCube], live: dict[str, MemCube]) -> float:
        """Tokenizer tokens per estimated token, from activation cubes whose sources are all live."""
        counted = estimated = 0
        for cube in derived.values():
            ids = [r.id for r in cube.derived_from]
            if cube.kind is CubeKind.ACTIVATION and cube.meta.get("tokens") and all(i in live for i in ids):
                counted += int(cube.meta["tokens"])
                estimated += sum(estimate_tokens(render_memory(CubeText.of(live[i]))) for i in ids)
        return counted / estimated if counted and estimated else 1.0

    def _pending(self, decisions: list[DecisionRecord]) -> list[tuple[Derived, DecisionRecord]]:
        """Work the scheduler submitted whose job is still queued or running (charged, never re-proposed)."""
        out: list[tuple[Derived, DecisionRecord]] = []
        for d in decisions:
            if d.outcome != "done" or d.job_id is None:
                continue
            job = self.store.load_job(d.job_id)
            if job is None or job.state not in (JobState.QUEUED, JobState.RUNNING):
                continue
            kind: Literal["activation", "parameter"] = "parameter" if job.kind == "consolidate" else "activation"
            sources = tuple(sorted(d.result.get("sources", d.targets)))
            out.append((Derived(f"job:{d.job_id}", kind, d.namespace, d.principal or "", sources, pending=True,
                                working_set=job.kind == "set_working_set"), d))
        return out

    def _scheduler_ledger(self, view: View, decisions: list[DecisionRecord],
                          pending: list[tuple[Derived, DecisionRecord]]) -> Ledger:
        """Use now: KV bytes and adapters stored or pending, training and compiling started in the last hour."""
        ledger = Ledger(self._scheduler_budgets())
        for ns, used in activation_use(view).items():
            ledger.charge(ns, Cost(activation_bytes=used))
        for cube in view.derived:
            if cube.kind == "parameter" and not cube.pending:
                ledger.charge(cube.namespace, Cost(adapters=1))
        for _, d in pending:
            ledger.charge(d.namespace, Cost(activation_bytes=max(0, int(d.cost.get("activation_bytes", 0))),
                                            adapters=max(0, int(d.cost.get("adapters", 0)))))
        for d in decisions:
            if d.outcome == "done" and d.clock >= view.now - _HOUR:
                ledger.charge(d.namespace, Cost(train_s=float(d.cost.get("train_s", 0.0)),
                                                compile_tokens=int(d.cost.get("compile_tokens", 0))))
        return ledger


def _info(cube: MemCube, scale: float) -> CubeInfo:
    tokens = max(1, round(estimate_tokens(render_memory(CubeText.of(cube))) * scale))
    return CubeInfo(cube.id, cube.namespace, tokens, cube.importance, cube.updated_at.timestamp())


def _with_activation_reads(signals: Signals, derived: list[Derived], half_life_s: float) -> Signals:
    """A copy of ``signals`` where reads of an activation cube (chat or generate naming it) count as reads
    of its sources' set: the set it serves."""
    sets = dict(signals.sets)
    for cube in derived:
        usage = signals.cubes.get(cube.id)
        if cube.kind != "activation" or usage is None or usage.last is None:
            continue
        old = sets.get(cube.sources)
        sets[cube.sources] = usage if old is None else old.merged(usage, half_life_s)
    return Signals(signals.cursor, signals.now, dict(signals.cubes), sets, signals.fit)
