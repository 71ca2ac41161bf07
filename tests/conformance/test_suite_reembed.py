"""The conformance suite's reembed tests, on every backend."""

from memcubed.testing.conformance.reembed import *  # noqa: F403
