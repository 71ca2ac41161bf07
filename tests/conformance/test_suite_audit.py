"""The conformance suite's audit tests, on every backend."""

from memcubed.testing.conformance.audit import *  # noqa: F403
