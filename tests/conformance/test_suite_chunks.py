"""The conformance suite's long-memory window tests, on every backend."""

from memcubed.testing.conformance.chunks import *  # noqa: F403
