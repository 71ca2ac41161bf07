"""The conformance suite's search_vocab tests, on every backend."""

from memcubed.testing.conformance.search_vocab import *  # noqa: F403
