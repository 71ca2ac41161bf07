"""The conformance suite's search_sessions tests, on every backend."""

from memcubed.testing.conformance.search_sessions import *  # noqa: F403
