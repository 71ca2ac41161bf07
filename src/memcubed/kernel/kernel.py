"""The kernel: the one entry point. Every operation runs
validate → authorize → execute → version → audit → emit event, in one transaction."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from memcubed.kernel.activation import ActivationOps
from memcubed.kernel.base import ADMIN, Progress
from memcubed.kernel.bundle import BundleOps
from memcubed.kernel.chat import ChatOps
from memcubed.kernel.consent import ConsentOps
from memcubed.kernel.gc import GcOps
from memcubed.kernel.governance import GovernanceOps
from memcubed.kernel.jobs import JobKind, JobOps
from memcubed.kernel.keys import KeyOps
from memcubed.kernel.lifecycle import LifecycleOps
from memcubed.kernel.listing import ListOps
from memcubed.kernel.parameter import ParameterOps
from memcubed.kernel.planner import PlannerOps
from memcubed.kernel.principals import PrincipalOps
from memcubed.kernel.reads import ReadOps
from memcubed.kernel.reembed import ReembedOps
from memcubed.kernel.scheduler import SchedulerOps
from memcubed.kernel.writes import WriteOps

__all__ = ["ADMIN", "Kernel", "Progress"]


class Kernel(ReembedOps, SchedulerOps, BundleOps, PlannerOps, GcOps, ChatOps, ConsentOps, LifecycleOps, WriteOps,
             ReadOps, ListOps, ActivationOps, ParameterOps, GovernanceOps, PrincipalOps, JobOps, KeyOps):
    """Governs every memory: rights, versions, audit and events around the store and engines.

    Args:
        store: the storage backend (only the kernel touches it).
        blobs: tensor payload storage.
        embedder: text embedder, or None for lexical-only stores; fixed for a store's lifetime.
        settings: limits and tuning.
        text: the plaintext retrieval engine (default configuration when omitted).
        models: the language models operations may name by id (``settings.models`` when omitted).
    """

    def job_kinds(self) -> dict[str, JobKind]:
        """The operations that can run as background jobs: the registry's ``job=True`` operations, each
        built by the kernel's ``_<name>_job`` method (its submit-time check and its run with progress)."""
        from memcubed.kernel.registry import OPERATIONS  # the registry is built on this class

        return {name: getattr(self, f"_{name}_job")() for name in OPERATIONS.jobs()}

    def validate_call(self, op: str, payload: BaseModel | Mapping[str, Any], *, principal: str) -> BaseModel:
        """Check that ``principal`` could run operation ``op`` with ``payload`` (schema, rights, model ids),
        writing nothing; return the validated input. What a planner runs on each proposed call.

        Raises:
            ValidationError / AccessDenied / NotFound / UnknownPrincipal: what running it would raise first.
        """
        from memcubed.kernel.registry import OPERATIONS  # the registry is built on this class

        return OPERATIONS.validate(self, op, payload, principal)

    def call(self, op: str, payload: BaseModel | Mapping[str, Any], *, principal: str) -> Any:
        """Validate, then run operation ``op`` of the registry with ``payload`` as ``principal``.

        Raises:
            MemcubedError: whatever validation or the operation raises.
        """
        from memcubed.kernel.registry import OPERATIONS

        return OPERATIONS.run(self, op, payload, principal)


def _auditing_denials(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def operation(self: Kernel, *args: Any, **kwargs: Any) -> Any:
        with self._denials(kwargs.get("principal"), name):
            return method(self, *args, **kwargs)
    return operation


# Every operation (a public method acting as a keyword-only ``principal``) audits the calls it refuses.
for _name, _method in inspect.getmembers(Kernel, inspect.isfunction):
    _principal = inspect.signature(_method).parameters.get("principal")
    if (not _name.startswith("_") and _name not in ("call", "validate_call") and _principal is not None
            and _principal.kind is inspect.Parameter.KEYWORD_ONLY):
        setattr(Kernel, _name, _auditing_denials(_name, _method))
