"""The conformance suite's search_speakers tests, on every backend."""

from memcubed.testing.conformance.search_speakers import *  # noqa: F403
