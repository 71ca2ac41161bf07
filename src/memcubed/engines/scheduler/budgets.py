"""Budgets per store and per namespace, and the ledger that enforces them.

A decision that would exceed any budget is not taken: ``Ledger.admit`` names the first budget it would
exceed, and the planner records the decision as deferred with that reason. Pure and deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from memcubed.errors import ValidationError

__all__ = ["Budget", "Budgets", "Cost", "Ledger"]


@dataclass(frozen=True)
class Budget:
    """Limits; None means unlimited.

    Attributes:
        activation_bytes: KV bytes on disk, over the distinct segments of live activation cubes.
        activation_memory_bytes: bytes one activation occupies in memory when chat loads it (float32).
        adapter_slots: active parameter cubes (each an adapter that may be loaded).
        train_s_per_hour: estimated training seconds started in any hour.
        compile_tokens_per_hour: tokens compiled into KV in any hour.
    """

    activation_bytes: int | None = None
    activation_memory_bytes: int | None = None
    adapter_slots: int | None = None
    train_s_per_hour: float | None = None
    compile_tokens_per_hour: int | None = None

    def __post_init__(self) -> None:
        for name in ("activation_bytes", "activation_memory_bytes", "adapter_slots", "train_s_per_hour",
                     "compile_tokens_per_hour"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise ValidationError(f"budget {name} must be a non-negative number or null, got {value!r}",
                                      field=name)

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Budget:
        """A budget from a mapping of its fields (unknown fields refused).

        Raises:
            ValidationError: an unknown field or a negative or non-numeric value.
        """
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationError(f"unknown budget fields {unknown}; known: {sorted(known)}", field="budgets")
        return cls(**data)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Cost:
    """What a decision adds (negative: frees): the quantities budgets bound."""

    activation_bytes: int = 0
    activation_memory_bytes: int = 0
    adapters: int = 0
    train_s: float = 0.0
    compile_tokens: int = 0

    def as_dict(self) -> dict[str, float]:
        return {"activation_bytes": self.activation_bytes, "activation_memory_bytes": self.activation_memory_bytes,
                "adapters": self.adapters, "train_s": self.train_s, "compile_tokens": self.compile_tokens}


@dataclass
class Use:
    """What is in use (or was spent in the last hour) in one scope."""

    activation_bytes: int = 0
    adapters: int = 0
    train_s_hour: float = 0.0
    compile_tokens_hour: int = 0

    def add(self, cost: Cost) -> Use:
        return Use(activation_bytes=self.activation_bytes + cost.activation_bytes,
                   adapters=self.adapters + cost.adapters, train_s_hour=self.train_s_hour + max(cost.train_s, 0.0),
                   compile_tokens_hour=self.compile_tokens_hour + max(cost.compile_tokens, 0))


@dataclass(frozen=True)
class Budgets:
    """The store's budget and each namespace's own (a namespace not listed has only the store's)."""

    store: Budget = field(default_factory=Budget)
    namespaces: Mapping[str, Budget] = field(default_factory=dict)

    def for_namespace(self, namespace: str) -> Budget:
        return self.namespaces.get(namespace, Budget())


def _exceeded(budget: Budget, use: Use, cost: Cost, scope: str) -> str | None:
    """The first limit of ``budget`` that ``use`` plus ``cost`` would exceed (a cost that frees never does)."""
    after = use.add(cost)
    checks: list[tuple[str, float | None, float, float]] = [
        ("activation_bytes", budget.activation_bytes, after.activation_bytes, cost.activation_bytes),
        ("activation_memory_bytes", budget.activation_memory_bytes, cost.activation_memory_bytes,
         cost.activation_memory_bytes),
        ("adapter_slots", budget.adapter_slots, after.adapters, cost.adapters),
        ("train_s_per_hour", budget.train_s_per_hour, after.train_s_hour, cost.train_s),
        ("compile_tokens_per_hour", budget.compile_tokens_per_hour, after.compile_tokens_hour, cost.compile_tokens),
    ]
    for name, limit, value, delta in checks:
        if limit is not None and delta > 0 and value > limit:
            return f"over the {scope} {name} budget ({value:g} > {limit:g})"
    return None


@dataclass
class Ledger:
    """Use per namespace and in all, checked against ``budgets`` before each decision is taken."""

    budgets: Budgets
    total: Use = field(default_factory=Use)
    namespaces: dict[str, Use] = field(default_factory=dict)

    def use(self, namespace: str) -> Use:
        return self.namespaces.get(namespace, Use())

    def admit(self, namespace: str, cost: Cost) -> str | None:
        """None when ``cost`` fits every budget in ``namespace`` and the store, else why it does not."""
        return (_exceeded(self.budgets.for_namespace(namespace), self.use(namespace), cost, f"namespace {namespace!r}")
                or _exceeded(self.budgets.store, self.total, cost, "store"))

    def charge(self, namespace: str, cost: Cost) -> None:
        """Record ``cost`` as taken."""
        self.namespaces[namespace] = self.use(namespace).add(cost)
        self.total = self.total.add(cost)

    def copy(self) -> Ledger:
        return Ledger(self.budgets, replace(self.total), {k: replace(v) for k, v in self.namespaces.items()})

    def state(self, namespace: str) -> dict[str, object]:
        """Use and limits of ``namespace`` and the store, as recorded with each decision."""
        def scope(use: Use, budget: Budget) -> dict[str, object]:
            return {"activation_bytes": [use.activation_bytes, budget.activation_bytes],
                    "activation_memory_bytes": [None, budget.activation_memory_bytes],
                    "adapter_slots": [use.adapters, budget.adapter_slots],
                    "train_s_per_hour": [round(use.train_s_hour, 3), budget.train_s_per_hour],
                    "compile_tokens_per_hour": [use.compile_tokens_hour, budget.compile_tokens_per_hour]}
        return {"namespace": scope(self.use(namespace), self.budgets.for_namespace(namespace)),
                "store": scope(self.total, self.budgets.store)}
