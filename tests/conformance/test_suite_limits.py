"""The conformance suite's limits tests, on every backend."""

from memcubed.testing.conformance.limits import *  # noqa: F403
