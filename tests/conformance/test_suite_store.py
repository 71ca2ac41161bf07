"""The conformance suite's store tests, on every backend."""

from memcubed.testing.conformance.store import *  # noqa: F403
