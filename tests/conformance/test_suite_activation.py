"""The conformance suite's activation tests, on every backend."""

from memcubed.testing.conformance.activation import *  # noqa: F403
