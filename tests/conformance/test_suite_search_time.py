"""The conformance suite's temporal search tests, on every backend."""

from memcubed.testing.conformance.search_time import *  # noqa: F403
