"""The conformance suite's events tests, on every backend."""

from memcubed.testing.conformance.events import *  # noqa: F403
