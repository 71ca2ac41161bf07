"""The conformance suite's search_cjk tests, on every backend."""

from memcubed.testing.conformance.search_cjk import *  # noqa: F403
