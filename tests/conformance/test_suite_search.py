"""The conformance suite's search tests, on every backend."""

from memcubed.testing.conformance.search import *  # noqa: F403
