"""The conformance suite's migrate tests, on every backend."""

from memcubed.testing.conformance.migrate import *  # noqa: F403
