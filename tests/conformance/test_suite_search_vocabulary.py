"""The conformance suite's search_vocabulary tests, on every backend."""

from memcubed.testing.conformance.search_vocabulary import *  # noqa: F403
