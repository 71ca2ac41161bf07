"""The conformance suite's concurrency tests, on every backend."""

from memcubed.testing.conformance.concurrency import *  # noqa: F403
