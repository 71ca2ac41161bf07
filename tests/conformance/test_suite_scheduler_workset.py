"""The scheduler-owned working set conformance suite on every backend."""

from memcubed.testing.conformance.scheduler_workset import *  # noqa: F403
