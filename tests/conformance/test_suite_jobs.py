"""The conformance suite's jobs tests, on every backend."""

from memcubed.testing.conformance.jobs import *  # noqa: F403
