"""The conformance suite's batch-write tests, on every backend."""

from memcubed.testing.conformance.batch_writes import *  # noqa: F403
