"""The conformance suite's keys tests, on every backend."""

from memcubed.testing.conformance.keys import *  # noqa: F403
