"""The conformance suite's kernel tests, on every backend."""

from memcubed.testing.conformance.kernel import *  # noqa: F403
