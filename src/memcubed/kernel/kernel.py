"""The kernel: the one entry point. Every operation runs
validate → authorize → execute → version → audit → emit event, in one transaction."""

from __future__ import annotations

from memcubed.kernel.activation import ActivationOps
from memcubed.kernel.base import ADMIN, Progress
from memcubed.kernel.chat import ChatOps
from memcubed.kernel.governance import GovernanceOps
from memcubed.kernel.jobs import JobKind, JobOps
from memcubed.kernel.keys import KeyOps
from memcubed.kernel.lifecycle import LifecycleOps
from memcubed.kernel.parameter import ParameterOps
from memcubed.kernel.reads import ReadOps
from memcubed.kernel.writes import WriteOps

__all__ = ["ADMIN", "Kernel", "Progress"]


class Kernel(ChatOps, LifecycleOps, WriteOps, ReadOps, ActivationOps, ParameterOps, GovernanceOps, JobOps, KeyOps):
    """Governs every memory: rights, versions, audit and events around the store and engines.

    Args:
        store: the storage backend (only the kernel touches it).
        blobs: tensor payload storage.
        embedder: text embedder, or None for lexical-only stores; fixed for a store's lifetime.
        settings: limits and tuning.
        text: the plaintext retrieval engine (default configuration when omitted).
    """

    def job_kinds(self) -> dict[str, JobKind]:
        """The operations that can run as background jobs."""
        return {"cache": self._cache_job(), "consolidate": self._consolidate_job()}
