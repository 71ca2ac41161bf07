"""The conformance suite's remember tests, on every backend."""

from memcubed.testing.conformance.remember import *  # noqa: F403
