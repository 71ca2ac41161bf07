"""The conformance suite's listing tests, on every backend."""

from memcubed.testing.conformance.listing import *  # noqa: F403
