"""The conformance suite's search_alias tests, on every backend."""

from memcubed.testing.conformance.search_alias import *  # noqa: F403
