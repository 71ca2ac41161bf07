"""The conformance suite's vectors tests, on every backend."""

from memcubed.testing.conformance.vectors import *  # noqa: F403
