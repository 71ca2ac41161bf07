"""The conformance suite's validation tests, on every backend."""

from memcubed.testing.conformance.validation import *  # noqa: F403
